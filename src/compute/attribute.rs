//! Every billed cent to a team: exact shares summed into invoice lines,
//! then rounded once, by largest remainder, so that
//! Σ team usage costs + unattributed = billed total + estimated total.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compute::reconcile::Reconciled;
use crate::config::UnattributedPolicy;
use crate::load::ingest::UsageCell;
use crate::money::{Decimal, largest_remainder, round_line, split_exact};

/// One usage line of an invoice: a model and use case of one provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageLine {
    pub provider: String,
    pub model: String,
    pub use_case: String,
    pub tokens: u64,
    pub requests: u64,
    /// Priced from the catalog: the provider sent no bill.
    pub estimated: bool,
    /// Full precision, before rounding.
    pub exact: Decimal,
    /// Rounded to the currency's minor unit.
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamUsage {
    pub team: String,
    pub lines: Vec<UsageLine>,
    pub usage_cost: Decimal,
    pub exact: Decimal,
    pub tokens: u64,
    pub requests: u64,
}

impl TeamUsage {
    pub fn estimated_cost(&self) -> Decimal {
        self.lines
            .iter()
            .filter(|l| l.estimated)
            .map(|l| l.amount)
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    pub teams: BTreeMap<String, TeamUsage>,
    /// Rounded unattributed cost per provider (the `report` bucket).
    pub unattributed: BTreeMap<String, Decimal>,
    pub unattributed_total: Decimal,
    /// Σ billed usage lines, rounded once.
    pub billed_total: Decimal,
    /// Σ catalog-priced usage, rounded once.
    pub estimated_total: Decimal,
    pub attributed_total: Decimal,
}

/// The use case of lines that carry reassigned unattributed cost.
pub const UNATTRIBUTED_USE_CASE: &str = "unattributed billed usage";

type LineKey = (String, String, String, bool);

pub fn attribute(
    cells: &[UsageCell],
    rec: &Reconciled,
    policy: &UnattributedPolicy,
    scale: u32,
) -> Attribution {
    // Exact amounts per (team, provider, model, use case, estimated).
    let mut lines: BTreeMap<String, BTreeMap<LineKey, (Decimal, u64, u64)>> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        let estimated = rec.estimated_providers.contains(&c.provider);
        let amount = if estimated {
            rec.cell_estimated[i]
        } else {
            rec.cell_billed[i]
        };
        let e = lines
            .entry(c.team.clone())
            .or_default()
            .entry((
                c.provider.clone(),
                c.model.clone(),
                c.use_case.clone(),
                estimated,
            ))
            .or_insert((Decimal::ZERO, 0, 0));
        e.0 += amount;
        e.1 = e.1.saturating_add(c.total_tokens());
        e.2 = e.2.saturating_add(c.requests);
    }

    let mut unattributed = rec.unattributed.clone();
    match policy {
        UnattributedPolicy::Report => {}
        UnattributedPolicy::Team(team) => {
            for (provider, amount) in std::mem::take(&mut unattributed) {
                let e = lines
                    .entry(team.clone())
                    .or_default()
                    .entry((
                        provider,
                        "(all models)".into(),
                        UNATTRIBUTED_USE_CASE.into(),
                        false,
                    ))
                    .or_insert((Decimal::ZERO, 0, 0));
                e.0 += amount;
            }
        }
        UnattributedPolicy::Proportional => {
            // Spread each provider's rest over the billed lines of that
            // provider, in proportion to what they already carry.
            for (provider, amount) in std::mem::take(&mut unattributed) {
                let keys: Vec<(String, LineKey)> = lines
                    .iter()
                    .flat_map(|(t, ls)| {
                        ls.iter()
                            .filter(|(k, v)| k.0 == provider && !k.3 && v.0 > Decimal::ZERO)
                            .map(move |(k, _)| (t.clone(), k.clone()))
                    })
                    .collect();
                let weights: Vec<Decimal> = keys.iter().map(|(t, k)| lines[t][k].0).collect();
                match split_exact(amount, &weights) {
                    Some(parts) => {
                        for ((t, k), p) in keys.into_iter().zip(parts) {
                            lines
                                .get_mut(&t)
                                .expect("team")
                                .get_mut(&k)
                                .expect("line")
                                .0 += p;
                        }
                    }
                    // Nothing of that provider was attributed: it stays.
                    None => {
                        unattributed.insert(provider, amount);
                    }
                }
            }
        }
    }

    let billed_total = round_line(rec.billed_total, scale);
    let estimated_total = round_line(rec.estimated_total, scale);
    let teams: Vec<&String> = lines.keys().collect();
    let mut exact_parties: Vec<Decimal> = teams
        .iter()
        .map(|t| lines[*t].values().map(|v| v.0).sum())
        .collect();
    let unattributed_exact: Decimal = unattributed.values().copied().sum();
    exact_parties.push(unattributed_exact);
    let rounded = largest_remainder(&exact_parties, billed_total + estimated_total, scale);

    let mut out_teams = BTreeMap::new();
    for (k, team) in teams.iter().enumerate() {
        let ls = &lines[*team];
        let exacts: Vec<Decimal> = ls.values().map(|v| v.0).collect();
        let amounts = largest_remainder(&exacts, rounded[k], scale);
        let lines: Vec<UsageLine> = ls
            .iter()
            .zip(amounts)
            .map(|((key, v), amount)| UsageLine {
                provider: key.0.clone(),
                model: key.1.clone(),
                use_case: key.2.clone(),
                estimated: key.3,
                tokens: v.1,
                requests: v.2,
                exact: v.0,
                amount,
            })
            .collect();
        out_teams.insert(
            (*team).clone(),
            TeamUsage {
                team: (*team).clone(),
                usage_cost: rounded[k],
                exact: exact_parties[k],
                tokens: lines.iter().fold(0u64, |a, l| a.saturating_add(l.tokens)),
                requests: lines.iter().fold(0u64, |a, l| a.saturating_add(l.requests)),
                lines,
            },
        );
    }
    let unattributed_total = *rounded.last().expect("the unattributed party");
    let providers: Vec<&String> = unattributed.keys().collect();
    let exacts: Vec<Decimal> = unattributed.values().copied().collect();
    let by_provider = largest_remainder(&exacts, unattributed_total, scale);
    let unattributed = providers.into_iter().cloned().zip(by_provider).collect();
    let attributed_total = out_teams.values().map(|t: &TeamUsage| t.usage_cost).sum();
    Attribution {
        teams: out_teams,
        unattributed,
        unattributed_total,
        billed_total,
        estimated_total,
        attributed_total,
    }
}

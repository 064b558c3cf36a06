//! Every billed cent to a team: exact shares summed into invoice lines,
//! then rounded once, by largest remainder, so that
//! Σ team usage costs + unattributed = billed total + estimated total.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use crate::compute::reconcile::Reconciled;
use crate::config::UnattributedPolicy;
use crate::fx::Rate;
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
    /// Estimated lines: the `effective_from` of each catalog price set
    /// the usage was priced with, in date order.
    pub prices_from: Vec<NaiveDate>,
    /// The exchange rates of the bill lines the amount came from, when
    /// some were billed in another currency.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fx_rates: Vec<Rate>,
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
    /// The unattributed cost before rounding: the last party of the
    /// largest-remainder rounding of the month.
    pub unattributed_exact: Decimal,
    /// Σ billed usage lines, rounded once.
    pub billed_total: Decimal,
    /// Σ catalog-priced usage, rounded once.
    pub estimated_total: Decimal,
    pub attributed_total: Decimal,
    /// Where each line's exact amount came from (lineage).
    #[serde(skip)]
    pub trace: AttributionTrace,
}

/// An invoice usage line: a team, by its position in
/// [`Attribution::teams`], and the line's 0-based position on its invoice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineRef {
    pub team: u32,
    pub line: u32,
}

/// What attribution did with each exact amount, for the lineage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributionTrace {
    /// Per usage cell (same index): the line its cost went to.
    pub cell_line: Vec<LineRef>,
    /// Policy `team`: per provider, the line that carries its unattributed
    /// cost.
    pub carried: Vec<(String, LineRef)>,
    /// Policy `proportional`: the parts of each provider's unattributed
    /// cost spread over its lines.
    pub spread: Vec<Spread>,
}

/// One line's part of a provider's unattributed cost (policy
/// `proportional`): `rest × weight / total_weight`, the weight being what
/// the line carried before.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub provider: String,
    pub line: LineRef,
    pub weight: Decimal,
    pub total_weight: Decimal,
    pub part: Decimal,
}

/// The exact sums of one invoice line while attribution builds it.
#[derive(Default)]
struct LineSum {
    exact: Decimal,
    tokens: u64,
    requests: u64,
    /// Its number in the order lines were first seen, for the trace.
    slot: usize,
    prices_from: BTreeSet<NaiveDate>,
    fx_rates: BTreeSet<Rate>,
}

/// The use case of lines that carry reassigned unattributed cost.
pub const UNATTRIBUTED_USE_CASE: &str = "unattributed billed usage";

type LineKey = (String, String, String, bool);

/// The line of `team` that carries `provider`'s reassigned unattributed
/// cost (policies `team:<id>` and `fixed`).
fn unattributed_line<'m>(
    lines: &'m mut BTreeMap<String, BTreeMap<LineKey, LineSum>>,
    team: &str,
    provider: &str,
    new_line: &mut impl FnMut() -> LineSum,
) -> &'m mut LineSum {
    lines
        .entry(team.to_string())
        .or_default()
        .entry((
            provider.to_string(),
            "(all models)".into(),
            UNATTRIBUTED_USE_CASE.into(),
            false,
        ))
        .or_insert_with(new_line)
}

pub fn attribute(
    cells: &[UsageCell],
    rec: &Reconciled,
    policy: &UnattributedPolicy,
    scale: u32,
) -> Attribution {
    // Exact amounts per (team, provider, model, use case, estimated).
    let mut lines: BTreeMap<String, BTreeMap<LineKey, LineSum>> = BTreeMap::new();
    let mut slots = 0usize;
    let mut new_line = || {
        slots += 1;
        LineSum {
            slot: slots - 1,
            ..LineSum::default()
        }
    };
    // The rates of the converted lines each cell has a share of, and of
    // each provider's converted lines that leave something unattributed
    // (on whichever lines carry it).
    let mut cell_rates: BTreeMap<usize, BTreeSet<&Rate>> = BTreeMap::new();
    for s in &rec.shares {
        let line = &rec.lines[s.line as usize];
        if !line.converted.is_empty() && !s.share.is_zero() {
            let rates = line.converted.iter().map(|c| &c.rate);
            cell_rates.entry(s.cell as usize).or_default().extend(rates);
        }
    }
    let rest_rates = |provider: &str| -> BTreeSet<Rate> {
        rec.lines
            .iter()
            .filter(|l| l.provider == provider && !l.rest().is_zero())
            .flat_map(|l| l.converted.iter().map(|c| c.rate.clone()))
            .collect()
    };
    let mut cell_slot = Vec::with_capacity(cells.len());
    for (i, c) in cells.iter().enumerate() {
        let estimated = rec.is_estimated(i, c);
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
            .or_insert_with(&mut new_line);
        e.exact += amount;
        e.tokens = e.tokens.saturating_add(c.total_tokens());
        e.requests = e.requests.saturating_add(c.requests);
        if estimated && let Ok(k) = rec.cell_prices.binary_search_by_key(&i, |p| p.0) {
            e.prices_from.insert(rec.cell_prices[k].1.effective_from);
        }
        if let Some(rates) = cell_rates.get(&i) {
            e.fx_rates.extend(rates.iter().map(|&r| r.clone()));
        }
        cell_slot.push(e.slot);
    }
    let mut carried: Vec<(String, usize)> = Vec::new();
    let mut spread: Vec<(String, usize, Decimal, Decimal, Decimal)> = Vec::new();

    let mut unattributed = rec.unattributed.clone();
    match policy {
        UnattributedPolicy::Report => {}
        UnattributedPolicy::Team(team) => {
            for (provider, amount) in std::mem::take(&mut unattributed) {
                let e = unattributed_line(&mut lines, team, &provider, &mut new_line);
                e.exact += amount;
                e.fx_rates.extend(rest_rates(&provider));
                carried.push((provider, e.slot));
            }
        }
        UnattributedPolicy::Fixed(shares) => {
            // Each provider's rest to the named teams by their fixed
            // shares (validated to sum to 1), on one line per provider.
            let (names, weights): (Vec<&String>, Vec<Decimal>) =
                shares.iter().map(|(t, w)| (t, *w)).unzip();
            for (provider, amount) in std::mem::take(&mut unattributed) {
                let parts = split_exact(amount, &weights).expect("shares sum to 1");
                for ((team, p), w) in names.iter().zip(parts).zip(&weights) {
                    let e = unattributed_line(&mut lines, team, &provider, &mut new_line);
                    e.exact += p;
                    e.fx_rates.extend(rest_rates(&provider));
                    spread.push((provider.clone(), e.slot, *w, Decimal::ONE, p));
                }
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
                            .filter(|(k, v)| k.0 == provider && !k.3 && v.exact > Decimal::ZERO)
                            .map(move |(k, _)| (t.clone(), k.clone()))
                    })
                    .collect();
                let weights: Vec<Decimal> = keys.iter().map(|(t, k)| lines[t][k].exact).collect();
                let total_weight: Decimal = weights.iter().copied().sum();
                match split_exact(amount, &weights) {
                    Some(parts) => {
                        for (((t, k), p), w) in keys.into_iter().zip(parts).zip(&weights) {
                            let e = lines.get_mut(&t).expect("team").get_mut(&k).expect("line");
                            e.exact += p;
                            e.fx_rates.extend(rest_rates(&provider));
                            spread.push((provider.clone(), e.slot, *w, total_weight, p));
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
        .map(|t| lines[*t].values().map(|v| v.exact).sum())
        .collect();
    let unattributed_exact: Decimal = unattributed.values().copied().sum();
    exact_parties.push(unattributed_exact);
    let rounded = largest_remainder(&exact_parties, billed_total + estimated_total, scale);

    let mut out_teams = BTreeMap::new();
    let mut slot_line = vec![LineRef::default(); slots];
    for (k, team) in teams.iter().enumerate() {
        let ls = &lines[*team];
        let exacts: Vec<Decimal> = ls.values().map(|v| v.exact).collect();
        let amounts = largest_remainder(&exacts, rounded[k], scale);
        for (n, v) in ls.values().enumerate() {
            slot_line[v.slot] = LineRef {
                team: k as u32,
                line: n as u32,
            };
        }
        let lines: Vec<UsageLine> = ls
            .iter()
            .zip(amounts)
            .map(|((key, v), amount)| UsageLine {
                provider: key.0.clone(),
                model: key.1.clone(),
                use_case: key.2.clone(),
                estimated: key.3,
                tokens: v.tokens,
                requests: v.requests,
                exact: v.exact,
                amount,
                prices_from: v.prices_from.iter().copied().collect(),
                fx_rates: v.fx_rates.iter().cloned().collect(),
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
    let trace = AttributionTrace {
        cell_line: cell_slot.into_iter().map(|s| slot_line[s]).collect(),
        carried: carried
            .into_iter()
            .map(|(p, s)| (p, slot_line[s]))
            .collect(),
        spread: spread
            .into_iter()
            .map(|(provider, s, weight, total_weight, part)| Spread {
                provider,
                line: slot_line[s],
                weight,
                total_weight,
                part,
            })
            .collect(),
    };
    Attribution {
        teams: out_teams,
        unattributed,
        unattributed_total,
        unattributed_exact,
        billed_total,
        estimated_total,
        attributed_total,
        trace,
    }
}

//! Shared-cost pools and the policy's adjustments: lines of an invoice
//! that no usage explains. Each pool is split over its teams and rounded by
//! largest remainder, so its cents add up to the pool exactly.

use std::collections::BTreeMap;

use crate::compute::chargeback::{Charge, ChargeKind};
use crate::config::{Adjustment, Policy, SharedCost, Split};
use crate::load::ingest::BilledLine;
use crate::money::{Decimal, format_amount, largest_remainder, round_line, split_exact};

/// A pool as spread: its amount, the lines per team, and why nobody
/// carries it when nobody does.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub name: String,
    pub amount: Decimal,
    pub lines: BTreeMap<String, Charge>,
    /// Set when the pool has no team to carry it this month.
    pub uncarried: Option<String>,
}

/// Every pool of the policy spread over `teams` (each invoiced team and
/// its rounded usage cost), in the policy's order. `other` are the bills'
/// non-usage lines, the amounts of `source = "bill:<category>"` pools.
pub fn spread_pools(
    policy: &Policy,
    teams: &BTreeMap<String, Decimal>,
    other: &[&BilledLine],
    scale: u32,
) -> Vec<Spread> {
    policy
        .shared_costs
        .iter()
        .map(|p| {
            spread(
                p.get_ref(),
                teams,
                other,
                scale,
                &policy.organization.currency,
            )
        })
        .collect()
}

fn spread(
    pool: &SharedCost,
    teams: &BTreeMap<String, Decimal>,
    other: &[&BilledLine],
    scale: u32,
    currency: &str,
) -> Spread {
    let amount = round_line(
        match (pool.amount, pool.bill_category()) {
            (Some(a), _) => a,
            (None, Some(c)) => other
                .iter()
                .filter(|l| l.category == c)
                .map(|l| l.cost)
                .sum(),
            (None, None) => Decimal::ZERO,
        },
        scale,
    );
    let carriers: Vec<(&String, Decimal)> = match &pool.teams {
        Some(list) => teams
            .iter()
            .filter(|(t, _)| list.contains(t))
            .map(|(t, c)| (t, *c))
            .collect(),
        None => teams.iter().map(|(t, c)| (t, *c)).collect(),
    };
    let mut out = Spread {
        name: pool.name.clone(),
        amount,
        lines: BTreeMap::new(),
        uncarried: None,
    };
    if carriers.is_empty() {
        out.uncarried = Some(format!(
            "shared cost `{}` of {} {currency} has no invoiced team to carry it this month; it is on no invoice",
            pool.name,
            format_amount(amount, scale)
        ));
        return out;
    }
    let total = format_amount(amount, scale);
    let (weights, how): (Vec<Decimal>, Vec<String>) = match pool.split {
        Split::Fixed => {
            let w = pool.weights.clone().unwrap_or_default();
            carriers
                .iter()
                .map(|(t, _)| {
                    let v = w.get(*t).map_or(Decimal::ZERO, |e| e.0);
                    (v, format!("fixed share {}", percent(v)))
                })
                .unzip()
        }
        Split::Proportional if carriers.iter().any(|(_, c)| *c > Decimal::ZERO) => {
            let sum: Decimal = carriers.iter().map(|(_, c)| (*c).max(Decimal::ZERO)).sum();
            carriers
                .iter()
                .map(|(_, c)| {
                    let c = (*c).max(Decimal::ZERO);
                    (c, format!("{} of the usage cost", percent(c / sum)))
                })
                .unzip()
        }
        // Even, or proportional with no usage to weigh by.
        split => {
            let n = carriers.len();
            let why = if split == Split::Proportional {
                " (no usage to weigh by)"
            } else {
                ""
            };
            carriers
                .iter()
                .map(|_| (Decimal::ONE, format!("even share, 1 of {n}{why}")))
                .unzip()
        }
    };
    let exact = split_exact(amount, &weights).unwrap_or_else(|| vec![Decimal::ZERO; weights.len()]);
    let rounded = largest_remainder(&exact, amount, scale);
    for (((team, _), share), (how, w)) in carriers
        .iter()
        .zip(rounded)
        .zip(how.into_iter().zip(&weights))
    {
        let rate = (pool.split == Split::Fixed).then_some(*w);
        out.lines.insert(
            (*team).clone(),
            Charge {
                kind: ChargeKind::SharedCost,
                description: format!("Shared cost: {} — {how} of {currency} {total}", pool.name),
                basis: Some(amount),
                rate,
                amount: share,
            },
        );
    }
    out
}

/// `0.4123` → `41.2%`; exact fractions keep their digits (`0.125` → `12.5%`).
fn percent(r: Decimal) -> String {
    let p = (r * Decimal::ONE_HUNDRED).round_dp(1).normalize();
    format!("{p}%")
}

/// The policy's adjustment as an invoice line.
pub fn adjustment_line(a: &Adjustment, scale: u32) -> Charge {
    let reference = a
        .reference
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Charge {
        kind: ChargeKind::Adjustment,
        description: format!("{}{reference}", a.reason),
        basis: None,
        rate: None,
        amount: round_line(a.amount, scale),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pools: &str) -> Policy {
        Policy::parse(
            &format!(
                r#"
[organization]
name = "Example Corp"
[sources]
requests = ["logs/*.csv"]
catalog = "catalog.json"
[teams.a]
[teams.b]
[teams.c]
{pools}
"#
            ),
            "p.toml",
        )
        .unwrap()
    }

    fn teams(costs: &[(&str, &str)]) -> BTreeMap<String, Decimal> {
        costs
            .iter()
            .map(|(t, c)| (t.to_string(), c.parse().unwrap()))
            .collect()
    }

    fn amounts(s: &Spread) -> Vec<(String, String)> {
        s.lines
            .iter()
            .map(|(t, c)| (t.clone(), c.amount.to_string()))
            .collect()
    }

    #[test]
    fn an_even_pool_of_100_over_three_teams_is_33_34_33_33_33_33() {
        let p =
            policy("[[shared_costs]]\nname = \"Gateway\"\namount = \"100.00\"\nsplit = \"even\"");
        let t = teams(&[("a", "5.00"), ("b", "1.00"), ("c", "0.00")]);
        let s = &spread_pools(&p, &t, &[], 2)[0];
        assert_eq!(
            amounts(s),
            vec![
                ("a".into(), "33.34".into()),
                ("b".into(), "33.33".into()),
                ("c".into(), "33.33".into())
            ]
        );
        assert_eq!(
            s.lines["a"].description,
            "Shared cost: Gateway — even share, 1 of 3 of USD 100.00"
        );
    }

    #[test]
    fn fixed_and_proportional_pools_add_up_to_the_cent() {
        let p = policy(
            "[[shared_costs]]\nname = \"Staff\"\namount = \"1000.00\"\nsplit = \"fixed\"\nteams = [\"a\", \"b\"]\nweights = { a = \"0.6\", b = \"0.4\" }\n\
             [[shared_costs]]\nname = \"Monitoring\"\namount = \"10.00\"",
        );
        let t = teams(&[("a", "1.00"), ("b", "1.00"), ("c", "1.00")]);
        let s = spread_pools(&p, &t, &[], 2);
        assert_eq!(
            amounts(&s[0]),
            vec![("a".into(), "600.00".into()), ("b".into(), "400.00".into())]
        );
        assert_eq!(s[0].lines["a"].rate, Some(Decimal::new(6, 1)));
        assert_eq!(
            amounts(&s[1]),
            vec![
                ("a".into(), "3.34".into()),
                ("b".into(), "3.33".into()),
                ("c".into(), "3.33".into())
            ]
        );
        assert_eq!(
            s[1].lines["b"].description,
            "Shared cost: Monitoring — 33.3% of the usage cost of USD 10.00"
        );
    }

    #[test]
    fn a_pool_without_teams_this_month_is_said_so() {
        let p = policy("[[shared_costs]]\nname = \"Gateway\"\namount = \"5\"");
        let s = &spread_pools(&p, &BTreeMap::new(), &[], 2)[0];
        assert!(s.lines.is_empty());
        assert_eq!(
            s.uncarried.as_deref(),
            Some(
                "shared cost `Gateway` of 5.00 USD has no invoiced team to carry it this month; it is on no invoice"
            )
        );
    }

    #[test]
    fn pool_rules_are_checked_word_for_word() {
        let err = |pools: &str| {
            Policy::parse(
                &format!(
                    "[organization]\nname = \"X\"\n[sources]\nrequests = [\"l\"]\ncatalog = \"c\"\n[teams.a]\n[teams.b]\n{pools}"
                ),
                "p.toml",
            )
            .unwrap_err()
            .report()
        };
        assert_eq!(
            err(
                "[[shared_costs]]\nname = \"S\"\namount = \"1\"\nsplit = \"fixed\"\nweights = { a = \"0.6\", b = \"0.3\" }"
            ),
            "error: p.toml:8:1: the weights of shared cost `S` sum to 0.9, not 1\n\
             hint: fixed weights are fractions of the pool and must sum to exactly 1\n"
        );
        assert_eq!(
            err("[[shared_costs]]\nname = \"S\"\namount = \"1\"\nteams = [\"a\", \"z\"]"),
            "error: p.toml:8:1: shared cost `S` names team `z`, which is not in [teams]\n\
             hint: add a [teams.z] table or fix the team id\n"
        );
        assert_eq!(
            err("[[shared_costs]]\nname = \"S\"\namount = \"1\"\nweights = { a = \"1\" }"),
            "error: p.toml:8:1: shared cost `S` has `weights` but is split `proportional`\n\
             hint: weights apply to `split = \"fixed\"` only\n"
        );
        assert_eq!(
            err("[[shared_costs]]\nname = \"S\"\namount = \"1\"\nteams = []"),
            "error: p.toml:8:1: shared cost `S` lists no team to carry it\n\
             hint: leave `teams` out to spread it over every invoiced team\n"
        );
        assert_eq!(
            err("[[shared_costs]]\nname = \"S\"\nsource = \"bill:usage\""),
            "error: p.toml:8:1: shared cost `S` has source `bill:usage`\n\
             hint: expected `bill:credit`, `bill:tax`, `bill:fee`, `bill:adjustment` or `bill:purchase`\n"
        );
        assert_eq!(
            err(
                "[[adjustments]]\nteam = \"z\"\namount = \"-100.00\"\nreason = \"Credit for incident\""
            ),
            "error: p.toml:8:1: adjustment `Credit for incident` is for team `z`, which is not in [teams]\n\
             hint: add a [teams.z] table or fix the team id\n"
        );
    }
}

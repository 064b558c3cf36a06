//! What each team pays: its chargeback model applied to its usage cost
//! (or, value-based, to its outcomes and seats). Every markup, fee, tier
//! step, outcome and seat charge is its own line, rounded once.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compute::attribute::TeamUsage;
use crate::config::{ChargebackModel, TeamTerms, Tier, TierMode};
use crate::money::{Decimal, round_line};

/// The kinds of line an invoice has besides its usage; `ledger.csv`'s
/// `kind` column names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    Markup,
    PlatformFee,
    FixedFee,
    /// A team's share of a cost the policy spreads over teams.
    SharedCost,
    /// A charge per business outcome (value-based charging).
    OutcomeCharge,
    /// A charge per seat for the month (value-based charging).
    SeatCharge,
    /// Value-based charging: the usage cost taken back off, so that the
    /// team pays its outcomes and seats while its usage lines still show
    /// what the usage cost (and the invoice still totals its lines).
    UsageOffset,
    /// A credit or debit the policy adds by hand.
    Adjustment,
}

impl ChargeKind {
    /// The stable name of the kind, as in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeKind::Markup => "markup",
            ChargeKind::PlatformFee => "platform_fee",
            ChargeKind::FixedFee => "fixed_fee",
            ChargeKind::SharedCost => "shared_cost",
            ChargeKind::OutcomeCharge => "outcome_charge",
            ChargeKind::SeatCharge => "seat_charge",
            ChargeKind::UsageOffset => "usage_offset",
            ChargeKind::Adjustment => "adjustment",
        }
    }
}

/// A line computed from the usage cost (or fixed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charge {
    pub kind: ChargeKind,
    pub description: String,
    /// The amount the rate applies to.
    pub basis: Option<Decimal>,
    pub rate: Option<Decimal>,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamCharges {
    /// The volume tier (tiered model).
    pub tier: Option<String>,
    pub charges: Vec<Charge>,
    /// The usage cost and every line, whatever its kind.
    pub total: Decimal,
}

impl TeamCharges {
    /// The charges of a team whose usage cost is `cost`: the total is the
    /// cost and every line, whatever kinds they are.
    pub fn new(tier: Option<String>, cost: Decimal, charges: Vec<Charge>) -> TeamCharges {
        let total = cost + charges.iter().map(|c| c.amount).sum::<Decimal>();
        TeamCharges {
            tier,
            charges,
            total,
        }
    }

    /// One more line, in the total.
    pub fn add(&mut self, charge: Charge) {
        self.total += charge.amount;
        self.charges.push(charge);
    }

    /// What the team is charged for its usage: its usage cost less any
    /// offset (zero under value-based charging).
    pub fn usage_charged(&self, cost: Decimal) -> Decimal {
        cost + self.sum(ChargeKind::UsageOffset)
    }

    /// The lines of one kind, summed.
    pub fn sum(&self, kind: ChargeKind) -> Decimal {
        self.charges
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.amount)
            .sum()
    }
}

const MTOK: u64 = 1_000_000;

/// The tier a monthly volume falls in: bounds are inclusive, in millions.
pub fn tier_for(tiers: &[Tier], tokens: u64) -> &Tier {
    tiers
        .iter()
        .find(|t| {
            t.up_to_mtokens
                .is_none_or(|m| tokens <= m.saturating_mul(MTOK))
        })
        .unwrap_or_else(|| tiers.last().expect("validated: tiers are not empty"))
}

/// What a value-based team's month is priced by: the outcomes counted
/// (logs and outcome sources together) and the distinct users seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamOutcomes {
    /// Outcome name → count in the month.
    pub outcomes: BTreeMap<String, u64>,
    /// Distinct non-empty `user` values of the team's used requests.
    pub users: u64,
}

/// The charges of a team under its terms; `value` is only read under
/// `value_based`.
pub fn charge(
    usage: &TeamUsage,
    terms: &TeamTerms,
    value: &TeamOutcomes,
    scale: u32,
) -> TeamCharges {
    let cost = usage.usage_cost;
    let mut charges = Vec::new();
    let mut tier = None;
    let pct = |r: Decimal| format!("{}%", (r * Decimal::ONE_HUNDRED).normalize());
    match terms.model {
        ChargebackModel::PassThrough => {}
        ChargebackModel::CostPlus => {
            if !terms.markup.is_zero() {
                charges.push(Charge {
                    kind: ChargeKind::Markup,
                    description: format!("Markup {} on usage cost", pct(terms.markup)),
                    basis: Some(cost),
                    rate: Some(terms.markup),
                    amount: round_line(cost * terms.markup, scale),
                });
            }
        }
        ChargebackModel::Tiered => {
            let t = tier_for(&terms.tiers, usage.tokens);
            tier = Some(t.name.clone());
            match terms.tier_mode {
                TierMode::Volume => charges.push(Charge {
                    kind: ChargeKind::Markup,
                    description: format!("Tier {} markup {} on usage cost", t.name, pct(t.markup)),
                    basis: Some(cost),
                    rate: Some(t.markup),
                    amount: round_line(cost * t.markup, scale),
                }),
                TierMode::Graduated => {
                    for (band, tokens) in graduated_bands(&terms.tiers, usage.tokens) {
                        let share = if usage.tokens == 0 {
                            Decimal::ZERO
                        } else {
                            // Divide first when the product would not fit.
                            let (t, all) = (Decimal::from(tokens), Decimal::from(usage.tokens));
                            cost.checked_mul(t)
                                .map_or_else(|| cost / all * t, |p| p / all)
                        };
                        charges.push(Charge {
                            kind: ChargeKind::Markup,
                            description: format!(
                                "Tier {} markup {} on the cost of {} tokens",
                                band.name,
                                pct(band.markup),
                                thousands(tokens)
                            ),
                            basis: Some(round_line(share, scale)),
                            rate: Some(band.markup),
                            amount: round_line(share * band.markup, scale),
                        });
                    }
                }
            }
            charges.push(Charge {
                kind: ChargeKind::PlatformFee,
                description: format!(
                    "Platform fee {} on usage cost",
                    pct(terms.platform_fee_rate)
                ),
                basis: Some(cost),
                rate: Some(terms.platform_fee_rate),
                amount: round_line(cost * terms.platform_fee_rate, scale),
            });
        }
        ChargebackModel::ValueBased => charges.extend(value_lines(cost, terms, value, scale)),
    }
    if !terms.fixed_fee.is_zero() {
        charges.push(Charge {
            kind: ChargeKind::FixedFee,
            description: "Fixed platform fee".into(),
            basis: None,
            rate: None,
            amount: round_line(terms.fixed_fee, scale),
        });
    }
    TeamCharges::new(tier, cost, charges)
}

/// Value-based lines: the usage cost offset (the usage lines stay on the
/// invoice, for information), then one line per outcome rate in name
/// order — zero for an outcome not seen — then the seats. An outcome seen
/// without a rate is charged nothing here; the caller reports it.
fn value_lines(cost: Decimal, terms: &TeamTerms, value: &TeamOutcomes, scale: u32) -> Vec<Charge> {
    let mut lines = Vec::new();
    if !cost.is_zero() {
        lines.push(Charge {
            kind: ChargeKind::UsageOffset,
            description: "Usage cost not charged: priced by outcomes and seats".into(),
            basis: Some(cost),
            rate: None,
            amount: -cost,
        });
    }
    for (outcome, rate) in &terms.outcome_rates {
        let n = value.outcomes.get(outcome).copied().unwrap_or(0);
        lines.push(Charge {
            kind: ChargeKind::OutcomeCharge,
            description: format!("Outcome {outcome}: {} × {rate}", thousands(n)),
            basis: Some(Decimal::from(n)),
            rate: Some(*rate),
            amount: round_line(Decimal::from(n) * rate, scale),
        });
    }
    if let Some(rate) = terms.seat_rate {
        let (n, what) = match terms.seats {
            Some(n) => (n, if n == 1 { "seat" } else { "seats" }),
            None => (
                value.users,
                if value.users == 1 {
                    "seat (distinct user in the month)"
                } else {
                    "seats (distinct users in the month)"
                },
            ),
        };
        lines.push(Charge {
            kind: ChargeKind::SeatCharge,
            description: format!("{} {what} × {rate}", thousands(n)),
            basis: Some(Decimal::from(n)),
            rate: Some(rate),
            amount: round_line(Decimal::from(n) * rate, scale),
        });
    }
    lines
}

/// Tokens in each band of a graduated table, bands with none left out.
pub fn graduated_bands(tiers: &[Tier], tokens: u64) -> Vec<(&Tier, u64)> {
    let mut out = Vec::new();
    let mut lower = 0u64;
    for t in tiers {
        let upper = t.up_to_mtokens.map_or(u64::MAX, |m| m.saturating_mul(MTOK));
        if tokens > lower {
            out.push((t, tokens.min(upper) - lower));
        }
        lower = upper;
        if tokens <= upper {
            break;
        }
    }
    out
}

/// `12345678` → `12,345,678`, for counts in descriptions.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_tiers;

    fn terms(model: ChargebackModel) -> TeamTerms {
        TeamTerms {
            id: "t".into(),
            name: "T".into(),
            cost_center: None,
            in_policy: true,
            model,
            markup: Decimal::new(20, 2),
            fixed_fee: Decimal::ZERO,
            platform_fee_rate: Decimal::new(15, 2),
            tier_mode: TierMode::Volume,
            tiers: default_tiers(),
            budget: None,
            alert_threshold: Decimal::new(8, 1),
            budget_basis: crate::config::BudgetBasis::Total,
            outcome_rates: BTreeMap::new(),
            seats: None,
            seat_rate: None,
        }
    }

    fn none() -> TeamOutcomes {
        TeamOutcomes::default()
    }

    fn usage(cost: &str, tokens: u64) -> TeamUsage {
        TeamUsage {
            team: "t".into(),
            lines: vec![],
            usage_cost: cost.parse().unwrap(),
            exact: cost.parse().unwrap(),
            tokens,
            requests: 1,
        }
    }

    #[test]
    fn tier_bounds_are_inclusive_millions() {
        let t = default_tiers();
        assert_eq!(tier_for(&t, 10_000_000).name, "experimental");
        assert_eq!(tier_for(&t, 10_000_001).name, "standard");
        assert_eq!(tier_for(&t, 100_000_000).name, "standard");
        assert_eq!(tier_for(&t, 100_000_001).name, "enterprise");
    }

    /// The seed's arithmetic: markup by volume tier plus the 15% platform
    /// fee, both on the usage cost.
    #[test]
    fn tiered_matches_the_seed_arithmetic() {
        let c = charge(
            &usage("1234.56", 8_000_000),
            &terms(ChargebackModel::Tiered),
            &none(),
            2,
        );
        assert_eq!(c.tier.as_deref(), Some("experimental"));
        assert_eq!(c.sum(ChargeKind::Markup).to_string(), "617.28");
        assert_eq!(c.sum(ChargeKind::PlatformFee).to_string(), "185.18"); // 185.184
        assert_eq!(c.total.to_string(), "2037.02");
        let c = charge(
            &usage("5000.00", 50_000_000),
            &terms(ChargebackModel::Tiered),
            &none(),
            2,
        );
        assert_eq!(
            (
                c.sum(ChargeKind::Markup).to_string(),
                c.sum(ChargeKind::PlatformFee).to_string()
            ),
            ("1000.00".into(), "750.00".into())
        );
        assert_eq!(c.total.to_string(), "6750.00");
    }

    #[test]
    fn cost_plus_adds_markup_and_fixed_fee() {
        let mut t = terms(ChargebackModel::CostPlus);
        t.fixed_fee = "250.00".parse().unwrap();
        let c = charge(&usage("100.05", 1), &t, &none(), 2);
        assert_eq!(c.sum(ChargeKind::Markup).to_string(), "20.01");
        assert_eq!(c.total.to_string(), "370.06");
        assert_eq!(c.charges.len(), 2);
    }

    #[test]
    fn the_total_is_every_line_whatever_its_kind() {
        let line = |kind, amount: &str| Charge {
            kind,
            description: String::new(),
            basis: None,
            rate: None,
            amount: amount.parse().unwrap(),
        };
        let c = TeamCharges::new(
            None,
            "100.00".parse().unwrap(),
            vec![
                line(ChargeKind::Markup, "10.00"),
                line(ChargeKind::SharedCost, "5.55"),
                line(ChargeKind::OutcomeCharge, "1.00"),
                line(ChargeKind::Adjustment, "-20.00"),
            ],
        );
        assert_eq!(c.total.to_string(), "96.55");
        assert_eq!(c.sum(ChargeKind::SharedCost).to_string(), "5.55");
        assert_eq!(c.sum(ChargeKind::FixedFee), Decimal::ZERO);
    }

    #[test]
    fn pass_through_is_cost() {
        let c = charge(
            &usage("42.42", 1),
            &terms(ChargebackModel::PassThrough),
            &none(),
            2,
        );
        assert!(c.charges.is_empty());
        assert_eq!(c.total.to_string(), "42.42");
    }

    #[test]
    fn graduated_bands_split_the_volume() {
        let mut t = terms(ChargebackModel::Tiered);
        t.tier_mode = TierMode::Graduated;
        // 20M tokens: 10M at 50%, 10M at 20% on half the cost each.
        let c = charge(&usage("200.00", 20_000_000), &t, &none(), 2);
        let markups: Vec<String> = c
            .charges
            .iter()
            .filter(|c| c.kind == ChargeKind::Markup)
            .map(|c| c.amount.to_string())
            .collect();
        assert_eq!(markups, vec!["50.00", "20.00"]);
        assert_eq!(c.total.to_string(), "300.00");
    }

    fn value_terms(
        rates: &[(&str, &str)],
        seats: Option<u64>,
        seat_rate: Option<&str>,
    ) -> TeamTerms {
        let mut t = terms(ChargebackModel::ValueBased);
        t.outcome_rates = rates
            .iter()
            .map(|(o, r)| (o.to_string(), r.parse().unwrap()))
            .collect();
        t.seats = seats;
        t.seat_rate = seat_rate.map(|r| r.parse().unwrap());
        t
    }

    fn lines(c: &TeamCharges) -> Vec<(&str, String, String)> {
        c.charges
            .iter()
            .map(|l| (l.kind.as_str(), l.description.clone(), l.amount.to_string()))
            .collect()
    }

    /// 1,234 resolved tickets at 0.50 and 40 seats at 2.00, on 100.05 of
    /// usage: the team pays 617.00 + 80.00; the usage is offset to zero.
    #[test]
    fn value_based_charges_outcomes_and_seats_not_usage() {
        let t = value_terms(
            &[("resolved_ticket", "0.50"), ("article_draft", "0.10")],
            Some(40),
            Some("2.00"),
        );
        let value = TeamOutcomes {
            outcomes: [("resolved_ticket".to_string(), 1234)].into(),
            users: 7,
        };
        let c = charge(&usage("100.05", 1), &t, &value, 2);
        assert_eq!(
            lines(&c),
            vec![
                (
                    "usage_offset",
                    "Usage cost not charged: priced by outcomes and seats".into(),
                    "-100.05".into()
                ),
                // A rate for an outcome never seen: a line of zero.
                (
                    "outcome_charge",
                    "Outcome article_draft: 0 × 0.10".into(),
                    "0.00".into()
                ),
                (
                    "outcome_charge",
                    "Outcome resolved_ticket: 1,234 × 0.50".into(),
                    "617.00".into()
                ),
                ("seat_charge", "40 seats × 2.00".into(), "80.00".into()),
            ]
        );
        assert_eq!(c.total.to_string(), "697.00");
        assert_eq!(c.usage_charged("100.05".parse().unwrap()), Decimal::ZERO);
    }

    #[test]
    fn seats_left_out_are_the_distinct_users() {
        let t = value_terms(&[], None, Some("2.50"));
        let value = TeamOutcomes {
            outcomes: BTreeMap::new(),
            users: 3,
        };
        let mut with_fee = t.clone();
        with_fee.fixed_fee = "10.00".parse().unwrap();
        let c = charge(&usage("0", 0), &with_fee, &value, 2);
        assert_eq!(
            lines(&c),
            vec![
                (
                    "seat_charge",
                    "3 seats (distinct users in the month) × 2.50".into(),
                    "7.50".into()
                ),
                ("fixed_fee", "Fixed platform fee".into(), "10.00".into()),
            ]
        );
        assert_eq!(c.total.to_string(), "17.50");
        // An outcome rate of a fraction of a cent rounds once per line.
        let t = value_terms(&[("draft", "0.004")], None, None);
        let value = TeamOutcomes {
            outcomes: [("draft".to_string(), 3)].into(),
            users: 0,
        };
        let c = charge(&usage("1.00", 1), &t, &value, 2);
        assert_eq!(c.sum(ChargeKind::OutcomeCharge).to_string(), "0.01");
        assert_eq!(c.total.to_string(), "0.01");
    }

    #[test]
    fn counts_in_descriptions_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }
}

//! `compare`'s result: the month as run against the same month computed
//! under a scenario, per team and for the organisation. Pure: two views
//! in, one comparison out.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use serde::Serialize;

use crate::compute::invoice::{Invoice, MonthView};
use crate::compute::whatif::Applied;
use crate::config::{ChargebackModel, Policy, TeamTerms};
use crate::money::{Decimal, RoundingStrategy, format_amount};

/// `compare.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub period: String,
    pub currency: String,
    pub issue_date: String,
    /// The scenario file, as given.
    pub scenario: String,
    pub description: Option<String>,
    /// How the scenario's month was computed, in sentences.
    pub method: Vec<String>,
    pub teams: Vec<TeamComparison>,
    pub totals: Totals,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamComparison {
    pub team: String,
    pub team_name: String,
    /// In the scenario only: a team planned, with no invoice this month.
    pub hypothetical: bool,
    pub current_model: Option<String>,
    pub calculated_model: Option<String>,
    /// `tiered → cost-plus`, or the one model when it did not change.
    pub model_change: String,
    pub current_usage_cost: String,
    pub calculated_usage_cost: String,
    /// The invoice total as run.
    pub current_cost: String,
    /// The invoice total under the scenario.
    pub calculated_monthly_cost: String,
    pub comparison_delta: Delta,
    /// The scenario's lines that touched this team, in words.
    pub user_selections: Vec<String>,
    /// A hypothetical team's draft invoice, relative to compare.json.
    pub draft_invoice: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    /// `calculated − current`, signed.
    pub amount: String,
    /// `amount ÷ current × 100`, one place, half away from zero; none
    /// when the current cost is zero.
    pub percent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub current_cost: String,
    pub calculated_monthly_cost: String,
    pub comparison_delta: Delta,
    pub current_billed: String,
    pub calculated_billed: String,
    pub current_estimated: String,
    pub calculated_estimated: String,
    pub unattributed: String,
}

/// The sentences that say how a scenario's month is computed.
pub const METHOD: [&str; 5] = [
    "The month is computed again by the same stages as `run`, from the same inputs, with the scenario's changes applied to the reconciled usage before attribution; every amount is rounded once per line as in `run`.",
    "Moved traffic keeps its token counts and cached shares; its share of the provider's bill is taken off that bill and its tokens are priced from the catalog at the target model on the same day.",
    "Caching at a hit rate prices that share of the uncached input tokens at the cached-input price of the model that day instead of the input price, off whatever the usage cost.",
    "Planned usage is priced from the catalog at the prices in force on the last day of the period.",
    "Terms changed by the scenario ([chargeback], [teams.<id>]) are laid over the policy key by key and checked as the policy is.",
];

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

/// The delta of two amounts, formatted.
pub fn delta(current: Decimal, calculated: Decimal, scale: u32) -> Delta {
    let d = calculated - current;
    let percent = (!current.is_zero()).then(|| {
        let p = (d * Decimal::ONE_HUNDRED / current)
            .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
        format!("{p:.1}")
    });
    Delta {
        amount: format_amount(d, scale),
        percent,
    }
}

/// What the scenario changed in a team's terms, in words.
fn term_changes(before: &TeamTerms, after: &TeamTerms, scale: u32) -> Vec<String> {
    let pct = |r: Decimal| format!("{}%", (r * Decimal::ONE_HUNDRED).normalize());
    let mut out = Vec::new();
    if before.model != after.model {
        out.push(format!(
            "chargeback model {} → {}",
            before.model.label(),
            after.model.label()
        ));
    }
    if before.markup != after.markup {
        out.push(format!(
            "markup {} → {}",
            pct(before.markup),
            pct(after.markup)
        ));
    }
    if before.platform_fee_rate != after.platform_fee_rate {
        out.push(format!(
            "platform fee {} → {}",
            pct(before.platform_fee_rate),
            pct(after.platform_fee_rate)
        ));
    }
    if before.fixed_fee != after.fixed_fee {
        out.push(format!(
            "fixed fee {} → {}",
            format_amount(before.fixed_fee, scale),
            format_amount(after.fixed_fee, scale)
        ));
    }
    if before.tier_mode != after.tier_mode || before.tiers != after.tiers {
        let names: Vec<String> = after
            .tiers
            .iter()
            .map(|t| format!("{} {}", t.name, pct(t.markup)))
            .collect();
        out.push(format!("tier table: {}", names.join(", ")));
    }
    if before.outcome_rates != after.outcome_rates
        || before.seat_rate != after.seat_rate
        || before.seats != after.seats
    {
        out.push("outcome and seat rates changed".to_string());
    }
    out
}

/// A new team's terms, in words.
fn describe(t: &TeamTerms, scale: u32) -> String {
    let pct = |r: Decimal| format!("{}%", (r * Decimal::ONE_HUNDRED).normalize());
    let mut out = match t.model {
        ChargebackModel::CostPlus => format!("cost-plus, markup {}", pct(t.markup)),
        ChargebackModel::Tiered => format!("tiered, platform fee {}", pct(t.platform_fee_rate)),
        m => m.label().to_string(),
    };
    if !t.fixed_fee.is_zero() {
        out.push_str(&format!(
            ", fixed fee {}",
            format_amount(t.fixed_fee, scale)
        ));
    }
    out
}

pub struct CompareInput<'a> {
    pub base: &'a MonthView,
    pub what: &'a MonthView,
    pub policy: &'a Policy,
    pub scenario_policy: &'a Policy,
    pub applied: &'a Applied,
    pub scenario: String,
    pub description: Option<String>,
    pub scale: u32,
}

/// The comparison of a month with its scenario.
pub fn compare(input: &CompareInput<'_>) -> Comparison {
    let scale = input.scale;
    let base: BTreeMap<&str, &Invoice> = input
        .base
        .invoices
        .iter()
        .map(|i| (i.team.as_str(), i))
        .collect();
    let what: BTreeMap<&str, &Invoice> = input
        .what
        .invoices
        .iter()
        .map(|i| (i.team.as_str(), i))
        .collect();
    let ids: BTreeSet<&str> = base.keys().chain(what.keys()).copied().collect();
    let zero = format_amount(Decimal::ZERO, scale);
    let mut teams = Vec::new();
    for id in ids {
        let (b, w) = (base.get(id), what.get(id));
        let mut selections: Vec<String> = input
            .applied
            .selections
            .get(id)
            .cloned()
            .unwrap_or_default();
        let after = input.scenario_policy.terms(id);
        if b.is_some() {
            let terms = term_changes(&input.policy.terms(id), &after, scale);
            selections.extend(terms.into_iter().map(|t| format!("terms: {t}")));
        } else {
            selections.push(format!("terms: {}", describe(&after, scale)));
        }
        let current = b.map_or(Decimal::ZERO, |i| dec(&i.total));
        let calculated = w.map_or(Decimal::ZERO, |i| dec(&i.total));
        let name = w.or(b).map(|i| i.team_name.clone()).unwrap_or_default();
        teams.push(TeamComparison {
            team: id.to_string(),
            team_name: name,
            hypothetical: b.is_none(),
            model_change: match (b, w) {
                (Some(b), Some(w)) if b.chargeback_model != w.chargeback_model => {
                    format!("{} → {}", b.chargeback_model, w.chargeback_model)
                }
                (_, Some(i)) | (Some(i), None) => i.chargeback_model.clone(),
                (None, None) => String::new(),
            },
            current_model: b.map(|i| i.chargeback_model.clone()),
            calculated_model: w.map(|i| i.chargeback_model.clone()),
            current_usage_cost: b.map_or_else(|| zero.clone(), |i| i.usage_cost.clone()),
            calculated_usage_cost: w.map_or_else(|| zero.clone(), |i| i.usage_cost.clone()),
            current_cost: format_amount(current, scale),
            calculated_monthly_cost: format_amount(calculated, scale),
            comparison_delta: delta(current, calculated, scale),
            user_selections: selections,
            draft_invoice: None,
        });
    }
    let current = dec(&input.base.charged_total);
    let calculated = dec(&input.what.charged_total);
    Comparison {
        period: input.base.period.clone(),
        currency: input.base.currency.clone(),
        issue_date: input.base.issue_date.clone(),
        scenario: input.scenario.clone(),
        description: input.description.clone(),
        method: METHOD.iter().map(|s| (*s).to_string()).collect(),
        teams,
        totals: Totals {
            current_cost: format_amount(current, scale),
            calculated_monthly_cost: format_amount(calculated, scale),
            comparison_delta: delta(current, calculated, scale),
            current_billed: input.base.billed_total.clone(),
            calculated_billed: input.what.billed_total.clone(),
            current_estimated: input.base.estimated_total.clone(),
            calculated_estimated: input.what.estimated_total.clone(),
            unattributed: input.what.unattributed.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_round_half_away_from_zero_to_a_tenth_of_a_percent() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let x = delta(d("200.00"), d("100.10"), 2);
        assert_eq!(
            (x.amount.as_str(), x.percent.as_deref()),
            ("-99.90", Some("-50.0"))
        );
        let x = delta(d("3.00"), d("3.01"), 2);
        assert_eq!(x.percent.as_deref(), Some("0.3"));
        let x = delta(d("8.00"), d("8.01"), 2);
        assert_eq!(x.percent.as_deref(), Some("0.1"), "0.125 → 0.1");
        let x = delta(d("0.00"), d("5.00"), 2);
        assert_eq!((x.amount.as_str(), x.percent), ("5.00", None));
    }
}

//! The view model: what `invoices.json` holds and the templates render.
//! Plain strings and integers only — no Polars types, no floats; money as
//! decimal strings with the currency's places.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::attribute::{Attribution, TeamUsage};
use crate::budget::BudgetStatus;
use crate::chargeback::TeamCharges;
use crate::config::{Organization, TeamTerms};
use crate::money::{Decimal, format_amount};
use crate::reconcile::{Exception, ReconRow, ratio};

#[derive(Debug, Clone, Serialize)]
pub struct Issuer {
    pub name: String,
    pub address: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceLine {
    /// `usage`, `markup`, `platform_fee` or `fixed_fee`.
    pub kind: String,
    pub description: String,
    pub provider: String,
    pub model: String,
    pub use_case: String,
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
    pub estimated: bool,
    pub rate: Option<String>,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetView {
    pub status: String,
    /// `status` for people: `no budget` rather than `no_budget`.
    pub label: String,
    pub budget: Option<String>,
    pub threshold: String,
    pub spent: String,
    pub projected: String,
    pub used: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invoice {
    pub team: String,
    pub team_name: String,
    pub cost_center: Option<String>,
    pub in_policy: bool,
    /// File stem of this invoice's outputs under `invoices/`.
    pub file: String,
    pub invoice_number: String,
    pub chargeback_model: String,
    pub usage_cost: String,
    pub estimated_cost: String,
    pub tier: Option<String>,
    pub markup: String,
    pub platform_fee: String,
    pub fixed_fee: String,
    pub shared_costs: String,
    pub outcome_charges: String,
    pub adjustments: String,
    pub total: String,
    pub tokens: u64,
    pub requests: u64,
    pub lines: Vec<InvoiceLine>,
    pub budget: BudgetView,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderView {
    pub provider: String,
    pub billed: String,
    pub attributed: String,
    pub unattributed: String,
    pub estimated: String,
    /// Logged / billed tokens over the month, where the bill states tokens.
    pub coverage: Option<String>,
    pub estimated_only: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct OtherCharge {
    pub provider: String,
    pub category: String,
    pub description: String,
    pub amount: String,
    pub source: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InputCounts {
    pub request_rows: u64,
    pub requests_used: u64,
    pub failed_requests: u64,
    pub duplicates_dropped: u64,
    pub quarantined_requests: u64,
    pub outside_period: u64,
    pub failed_excluded: u64,
    pub billing_rows: u64,
    pub quarantined_billing_rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionCount {
    pub kind: String,
    pub count: usize,
}

/// The whole month: every invoice plus what the finance summary shows.
#[derive(Debug, Clone, Serialize)]
pub struct Month {
    pub period: String,
    pub currency: String,
    pub issuer: Issuer,
    pub issue_date: String,
    pub due_date: String,
    pub billed_total: String,
    pub estimated_total: String,
    pub attributed_total: String,
    pub unattributed: String,
    pub unattributed_by_provider: BTreeMap<String, String>,
    pub charged_total: String,
    pub markup_total: String,
    pub ties_to_bill: bool,
    pub invoices: Vec<Invoice>,
    pub providers: Vec<ProviderView>,
    pub other_billed_charges: Vec<OtherCharge>,
    pub other_billed_total: String,
    pub inputs: InputCounts,
    pub exceptions: Vec<ExceptionCount>,
    pub exception_total: usize,
}

/// A team id made safe as a file name: it cannot leave the output folder.
pub fn file_stem(team: &str) -> String {
    let s: String = team
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.chars().all(|c| c == '_') {
        format!("team_{s}")
    } else {
        s
    }
}

pub struct TeamResult<'a> {
    pub terms: TeamTerms,
    pub usage: &'a TeamUsage,
    pub charges: TeamCharges,
    pub budget: BudgetStatus,
}

pub struct MonthInput<'a> {
    pub period: String,
    pub org: &'a Organization,
    pub issue_date: NaiveDate,
    pub scale: u32,
    pub attribution: &'a Attribution,
    pub teams: Vec<TeamResult<'a>>,
    pub rows: &'a [ReconRow],
    pub other: Vec<OtherCharge>,
    pub other_total: Decimal,
    pub inputs: InputCounts,
    pub exceptions: &'a [Exception],
}

pub fn build_month(m: MonthInput<'_>) -> Month {
    let money = |d: Decimal| format_amount(d, m.scale);
    let rate = |r: Decimal| (r * Decimal::ONE_HUNDRED).normalize().to_string() + "%";
    let a = m.attribution;
    // Distinct stems even when two team ids clean up to the same one.
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let mut invoices = Vec::new();
    for t in &m.teams {
        let base = file_stem(&t.terms.id);
        let n = used.entry(base.clone()).or_insert(0);
        *n += 1;
        let file = if *n == 1 { base } else { format!("{base}-{n}") };
        let mut lines: Vec<InvoiceLine> = t
            .usage
            .lines
            .iter()
            .map(|l| InvoiceLine {
                kind: "usage".into(),
                description: format!(
                    "{} · {}{}",
                    l.model,
                    l.use_case,
                    if l.estimated { " (estimated)" } else { "" }
                ),
                provider: l.provider.clone(),
                model: l.model.clone(),
                use_case: l.use_case.clone(),
                tokens: Some(l.tokens),
                requests: Some(l.requests),
                estimated: l.estimated,
                rate: None,
                amount: money(l.amount),
            })
            .collect();
        for c in &t.charges.charges {
            lines.push(InvoiceLine {
                kind: serde_json::to_value(c.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                description: c.description.clone(),
                provider: String::new(),
                model: String::new(),
                use_case: String::new(),
                tokens: None,
                requests: None,
                estimated: false,
                rate: c.rate.map(rate),
                amount: money(c.amount),
            });
        }
        let b = &t.budget;
        invoices.push(Invoice {
            team: t.terms.id.clone(),
            team_name: t.terms.name.clone(),
            cost_center: t.terms.cost_center.clone(),
            in_policy: t.terms.in_policy,
            invoice_number: format!("{}-{}-{}", m.org.invoice_prefix, m.period, file),
            file,
            chargeback_model: t.terms.model.label().into(),
            usage_cost: money(t.usage.usage_cost),
            estimated_cost: money(t.usage.estimated_cost()),
            tier: t.charges.tier.clone(),
            markup: money(t.charges.markup),
            platform_fee: money(t.charges.platform_fee),
            fixed_fee: money(t.charges.fixed_fee),
            shared_costs: money(Decimal::ZERO),
            outcome_charges: money(Decimal::ZERO),
            adjustments: money(Decimal::ZERO),
            total: money(t.charges.total),
            tokens: t.usage.tokens,
            requests: t.usage.requests,
            lines,
            budget: BudgetView {
                status: b.status.as_str().into(),
                label: b.status.as_str().replace('_', " "),
                budget: b.budget.map(money),
                threshold: rate(b.threshold),
                spent: money(b.spent),
                projected: money(b.projected),
                used: b
                    .budget
                    .filter(|x| !x.is_zero())
                    .map(|x| ratio(b.projected / x)),
            },
        });
    }

    let mut per_provider: BTreeMap<&str, [Decimal; 6]> = BTreeMap::new();
    for r in m.rows {
        let e = per_provider.entry(&r.provider).or_default();
        e[0] += r.billed_cost;
        e[1] += r.attributed;
        e[2] += r.unattributed;
        e[3] += r.estimated;
        e[4] += r.billed_tokens;
        e[5] += r.logged_tokens;
    }
    let providers = per_provider
        .into_iter()
        .map(|(p, v)| ProviderView {
            provider: p.to_string(),
            billed: money(v[0]),
            attributed: money(v[1]),
            unattributed: money(v[2]),
            estimated: money(v[3]),
            coverage: (!v[4].is_zero()).then(|| ratio(v[5] / v[4])),
            estimated_only: v[0].is_zero() && !v[3].is_zero(),
        })
        .collect();
    let charged: Decimal = m.teams.iter().map(|t| t.charges.total).sum();
    let markup: Decimal = m
        .teams
        .iter()
        .map(|t| t.charges.total - t.usage.usage_cost)
        .sum();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in m.exceptions {
        *counts.entry(e.kind).or_default() += 1;
    }
    Month {
        period: m.period.clone(),
        currency: m.org.currency.clone(),
        issuer: Issuer {
            name: m.org.name.clone(),
            address: m.org.address.clone(),
        },
        issue_date: m.issue_date.to_string(),
        due_date: (m.issue_date + chrono::Duration::days(i64::from(m.org.payment_terms_days)))
            .to_string(),
        billed_total: money(a.billed_total),
        estimated_total: money(a.estimated_total),
        attributed_total: money(a.attributed_total),
        unattributed: money(a.unattributed_total),
        unattributed_by_provider: a
            .unattributed
            .iter()
            .map(|(p, v)| (p.clone(), money(*v)))
            .collect(),
        charged_total: money(charged),
        markup_total: money(markup),
        ties_to_bill: a.attributed_total + a.unattributed_total
            == a.billed_total + a.estimated_total,
        invoices,
        providers,
        other_billed_charges: m.other,
        other_billed_total: money(m.other_total),
        inputs: m.inputs,
        exceptions: counts
            .into_iter()
            .map(|(k, count)| ExceptionCount {
                kind: k.to_string(),
                count,
            })
            .collect(),
        exception_total: m.exceptions.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_ids_cannot_escape_the_folder() {
        assert_eq!(file_stem("support"), "support");
        assert_eq!(file_stem("../../etc/passwd"), "______etc_passwd");
        assert_eq!(file_stem(".."), "team___");
        assert_eq!(file_stem("<script>"), "_script_");
        assert_eq!(file_stem("Data Science"), "Data_Science");
    }
}

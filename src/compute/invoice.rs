//! The view model: what `invoices.json` holds and the templates render.
//! Plain strings and integers only — no Polars types, no floats; money as
//! decimal strings with the currency's places.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::compute::attribute::{Attribution, TeamUsage};
use crate::compute::budget::BudgetStatus;
use crate::compute::chargeback::{ChargeKind, TeamCharges, TeamOutcomes};
use crate::compute::reconcile::{Exception, ReconRow, ratio};
use crate::config::{ChargebackModel, Organization, TeamTerms, UnattributedPolicy};
use crate::fx::rates_in_words;
use crate::load::ingest::OtherServices;
use crate::money::{Decimal, format_amount, round_line};
use crate::schema;
use crate::table::csv_bytes;

/// Who issues the invoices (`[organization]`), and where a reader turns
/// with a question. The optional keys are left out of the data when the
/// policy has none, so such months keep their bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Issuer {
    pub name: String,
    pub address: Vec<String>,
    /// The issuer's cost centre, credited with every charge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    /// Where questions and disputes go: an e-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// How to dispute an invoice, in the policy's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispute: Option<String>,
}

/// The `kind` of a usage line; every other line's kind is its
/// [`ChargeKind::as_str`].
pub const USAGE_KIND: &str = "usage";

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceLine {
    /// [`USAGE_KIND`] or a [`ChargeKind`]'s name (`markup`, `platform_fee`, …).
    pub kind: String,
    pub description: String,
    pub provider: String,
    pub model: String,
    pub use_case: String,
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
    pub estimated: bool,
    /// Estimated lines: the catalog price versions that priced them
    /// (`catalog prices of 2025-01-01 and 2025-01-15`).
    pub prices: Option<String>,
    /// Lines of bills in another currency: the rates they were converted
    /// at (`converted from EUR at 1.0842 (rate of 2025-01-01)`). Left out
    /// of `invoices.json` when none, so months in one currency keep their
    /// bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fx: Option<String>,
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
    /// Month-end spend: a projection mid-month, what was spent once the
    /// month is closed (`basis` says which).
    pub projected: String,
    /// `actual` (the month is closed), `projected` (a run as of a day in
    /// the period) or `to_date` (as of a day before it).
    pub basis: String,
    /// `basis` for people: `actual spend`, `projected month-end spend`.
    pub basis_label: String,
    /// `projected` in percent of the budget.
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
    /// `total − usage_cost`: every markup, fee and charge line together.
    pub markup_and_fees: String,
    pub tokens: u64,
    pub requests: u64,
    /// Requests that failed (status `error`), among `requests`.
    pub failed_requests: u64,
    /// `failed_requests / requests` in percent (`"2.5%"`), when any failed.
    pub error_rate: Option<String>,
    /// What the failed requests cost, of `usage_cost` (exact share,
    /// rounded for print: informational, not a line), when any failed.
    pub failed_cost: Option<String>,
    pub lines: Vec<InvoiceLine>,
    pub budget: BudgetView,
    /// Value-based teams only: what the charge is priced by, beside what
    /// the usage cost. Left out of `invoices.json` for other models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<ValueView>,
}

/// A value-based invoice's outcomes and seats, its usage cost beside them,
/// and the margin between the two.
#[derive(Debug, Clone, Serialize)]
pub struct ValueView {
    /// Every outcome with a rate (zero when none was counted), and every
    /// outcome counted without one, by name.
    pub outcomes: Vec<OutcomeView>,
    /// Σ the outcomes counted.
    pub outcome_count: u64,
    /// The seats charged, when the team has a `seat_rate`.
    pub seats: Option<SeatView>,
    /// Distinct users of the team's requests in the month.
    pub users: u64,
    /// Σ outcome and seat lines: what the team is charged for value.
    pub value_charges: String,
    /// The usage cost the platform bore (`usage_cost`, not charged).
    pub usage_cost: String,
    /// `value_charges − usage_cost`; negative when usage cost more.
    pub margin: String,
    /// `usage_cost / outcome_count`, two places more than the currency's;
    /// none without outcomes.
    pub cost_per_outcome: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutcomeView {
    pub outcome: String,
    pub count: u64,
    /// The price of one; none for an outcome counted without a rate.
    pub rate: Option<String>,
    /// `count × rate`, rounded once; none without a rate (charged nothing).
    pub amount: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeatView {
    pub seats: u64,
    /// `policy` (the team's `seats`) or `distinct_users`.
    pub basis: String,
    pub rate: String,
    pub amount: String,
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
    /// What the provider's numbers came from: the kinds of bill read
    /// (`FOCUS export`, `Anthropic cost report`, …), or `catalog prices`
    /// when no bill was.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OtherCharge {
    pub provider: String,
    pub category: String,
    pub description: String,
    pub amount: String,
    pub source: String,
    /// A charge billed in another currency: what the bill stated and the
    /// rate (`converted from EUR 4.12 at 1.0910 (rate of 2025-01-15)`);
    /// left out when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fx: Option<String>,
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
    /// Duplicate and quarantined request rows a cluster counted but did not
    /// send back to be named in `quarantine/` (beyond `[engine]
    /// list_limit`). Left out when there are none.
    #[serde(skip_serializing_if = "is_zero")]
    pub rows_not_listed: u64,
    /// Outcome sources (`[sources] outcomes`): rows read, counted,
    /// rejected, repeated references dropped, of other months. Left out
    /// of `invoices.json` when there are none.
    #[serde(skip_serializing_if = "is_zero")]
    pub outcome_rows: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub outcomes_counted: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub quarantined_outcome_rows: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicate_outcome_rows: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub outcome_rows_outside_period: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A bill row that was rejected, with its amount as the bill wrote it:
/// money the split could not include.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedBillRow {
    /// `uri:row`.
    pub source: String,
    pub column: String,
    pub reason: String,
    /// The row's amount as written (empty when it had none).
    pub cost: String,
}

/// One exception in words: what, where, and the detail (amounts included).
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionView {
    pub kind: String,
    pub label: String,
    /// Provider, day, model, team and source, those that apply, joined.
    pub at: String,
    pub detail: String,
}

/// From the month's usage to each provider's invoice total, and who
/// carries what no team's usage explains.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeRow {
    pub provider: String,
    /// Billed usage lines (what was split over teams).
    pub usage_billed: String,
    /// Credits, tax, fees, adjustments, purchases and corrections.
    pub other_charges: String,
    /// `usage_billed + other_charges`: the provider's invoice as read.
    pub invoice_total: String,
    pub attributed: String,
    pub unattributed: String,
    /// Who carries `unattributed` under the policy.
    pub unattributed_carried_by: String,
    /// Who carries `other_charges`.
    pub other_charges_carried_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionCount {
    pub kind: String,
    pub count: usize,
}

/// One bar of a finance-summary chart. `amount` is the printed money string;
/// `bar` is the bar's length in percent of the chart's longest bar (`"62.5"`),
/// for drawing only — it is never printed as money.
#[derive(Debug, Clone, Serialize)]
pub struct ChartBar {
    /// What the bar stands for: a team id (empty for the unattributed
    /// bucket), `provider/model` or a day.
    pub key: String,
    pub label: String,
    pub amount: String,
    pub bar: String,
}

/// The whole month: every invoice plus what the finance summary shows.
#[derive(Debug, Clone, Serialize)]
pub struct MonthView {
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
    /// `attributed_total + unattributed`: the usage cost of the month.
    pub usage_total: String,
    /// The split is exact (team usage + unattributed = billed + estimated)
    /// and the bills read are the whole of the month's invoices: nothing
    /// rejected, none truncated, none of another month.
    pub ties_to_bill: bool,
    /// Why the month does not tie to the provider's invoice, in words.
    pub tie_breaks: Vec<String>,
    pub invoices: Vec<Invoice>,
    pub providers: Vec<ProviderView>,
    pub other_billed_charges: Vec<OtherCharge>,
    pub other_billed_total: String,
    /// Per provider: usage billed + other charges = the invoice total.
    pub bridge: Vec<BridgeRow>,
    /// Bill rows of other cloud services in the period (a FOCUS export
    /// holds the whole cloud bill): not LLM spend, never billed to a team.
    pub other_services_rows: u64,
    pub other_services_total: String,
    pub rejected_bill_rows: Vec<RejectedBillRow>,
    pub inputs: InputCounts,
    pub exceptions: Vec<ExceptionCount>,
    pub exception_total: usize,
    /// The most important exceptions in words (most severe first), at
    /// most [`TOP_EXCEPTIONS`].
    pub top_exceptions: Vec<ExceptionView>,
    /// Usage cost per team, and the unattributed bucket, largest first
    /// (ties by key): sums to billed + estimated.
    pub cost_by_team: Vec<ChartBar>,
    /// Billed + estimated usage cost per provider and model, largest first
    /// (ties by key); exact sums rounded for display.
    pub cost_by_model: Vec<ChartBar>,
    /// Billed + estimated usage cost per UTC day, every day of the period in
    /// date order; exact sums rounded for display.
    pub daily_cost: Vec<ChartBar>,
}

/// What one invoice document is rendered from, HTML and PDF alike: the
/// month's header and the team's invoice, never another team's numbers.
/// Built per invoice in constant time, so a month of many teams renders in
/// time linear in its invoices.
#[derive(Debug, Serialize)]
pub struct InvoiceView<'a> {
    pub month: MonthHeader<'a>,
    pub invoice: &'a Invoice,
    /// A what-if's draft for a hypothetical team, not an invoice (left
    /// out of the data otherwise, so an invoice's attached data is as it was).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub draft: bool,
}

/// The keys of the month an invoice shows.
#[derive(Debug, Serialize)]
pub struct MonthHeader<'a> {
    pub period: &'a str,
    pub currency: &'a str,
    pub issuer: &'a Issuer,
    pub issue_date: &'a str,
    pub due_date: &'a str,
}

impl MonthView {
    pub fn invoice_view<'a>(&'a self, invoice: &'a Invoice) -> InvoiceView<'a> {
        InvoiceView {
            month: MonthHeader {
                period: &self.period,
                currency: &self.currency,
                issuer: &self.issuer,
                issue_date: &self.issue_date,
                due_date: &self.due_date,
            },
            invoice,
            draft: false,
        }
    }
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
    /// Requests with status `error` among the team's.
    pub failed_requests: u64,
    /// The exact part of the team's usage cost those requests carry.
    pub failed_cost: Decimal,
    /// The outcomes and users of the month (value-based charging).
    pub outcomes: TeamOutcomes,
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
    /// Exact other billed charges per provider.
    pub other_by_provider: BTreeMap<String, Decimal>,
    pub unattributed_policy: &'a UnattributedPolicy,
    pub tie_breaks: Vec<String>,
    pub other_services: OtherServices,
    pub rejected_bill_rows: Vec<RejectedBillRow>,
    pub inputs: InputCounts,
    pub exceptions: &'a [Exception],
    /// Provider → the kinds of bill read for it.
    pub bill_sources: &'a BTreeMap<String, BTreeSet<&'static str>>,
    /// Provider → who carries its other charges, when shared-cost pools
    /// take some of them.
    pub other_carried_by: BTreeMap<String, String>,
}

pub fn build_month(m: MonthInput<'_>) -> MonthView {
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
                kind: USAGE_KIND.into(),
                description: format!(
                    "{} · {}{}",
                    l.model,
                    l.use_case,
                    if l.estimated {
                        estimated_note(&l.prices_from)
                    } else {
                        String::new()
                    }
                ),
                provider: l.provider.clone(),
                model: l.model.clone(),
                use_case: l.use_case.clone(),
                tokens: Some(l.tokens),
                requests: Some(l.requests),
                estimated: l.estimated,
                prices: l.estimated.then(|| price_versions(&l.prices_from)),
                fx: rates_in_words(&l.fx_rates).map(|w| format!("converted from {w}")),
                rate: None,
                amount: money(l.amount),
            })
            .collect();
        for c in &t.charges.charges {
            // Outcomes and seats have a price each, not a rate on a cost:
            // shown as the policy wrote it (`0.50`).
            let per_unit = matches!(c.kind, ChargeKind::OutcomeCharge | ChargeKind::SeatCharge);
            lines.push(InvoiceLine {
                kind: c.kind.as_str().into(),
                description: c.description.clone(),
                provider: String::new(),
                model: String::new(),
                use_case: String::new(),
                tokens: None,
                requests: None,
                estimated: false,
                prices: None,
                fx: None,
                rate: c
                    .rate
                    .map(|r| if per_unit { r.to_string() } else { rate(r) }),
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
            markup: money(t.charges.sum(ChargeKind::Markup)),
            platform_fee: money(t.charges.sum(ChargeKind::PlatformFee)),
            fixed_fee: money(t.charges.sum(ChargeKind::FixedFee)),
            shared_costs: money(t.charges.sum(ChargeKind::SharedCost)),
            outcome_charges: money(t.charges.sum(ChargeKind::OutcomeCharge)),
            adjustments: money(t.charges.sum(ChargeKind::Adjustment)),
            total: money(t.charges.total),
            markup_and_fees: money(t.charges.total - t.usage.usage_cost),
            tokens: t.usage.tokens,
            requests: t.usage.requests,
            failed_requests: t.failed_requests,
            error_rate: error_rate(t.failed_requests, t.usage.requests),
            failed_cost: (t.failed_requests > 0).then(|| money(t.failed_cost)),
            lines,
            budget: BudgetView {
                status: b.status.as_str().into(),
                label: b.status.as_str().replace('_', " "),
                budget: b.budget.map(money),
                threshold: rate(b.threshold),
                spent: money(b.spent),
                projected: money(b.projected),
                basis: b.basis().as_str().into(),
                basis_label: b.basis().label().into(),
                used: b
                    .budget
                    .filter(|x| !x.is_zero())
                    .map(|x| ratio(b.projected / x)),
            },
            value: (t.terms.model == ChargebackModel::ValueBased).then(|| value_view(t, m.scale)),
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
            sources: match m.bill_sources.get(p) {
                Some(kinds) if !kinds.is_empty() => kinds.iter().map(ToString::to_string).collect(),
                _ => vec!["catalog prices".to_string()],
            },
        })
        .collect();
    let bridge = bridge(
        m.rows,
        &m.other_by_provider,
        &m.other_carried_by,
        m.unattributed_policy,
        m.scale,
    );
    let charged: Decimal = m.teams.iter().map(|t| t.charges.total).sum();
    let markup: Decimal = m
        .teams
        .iter()
        .map(|t| t.charges.total - t.usage.usage_cost)
        .sum();
    let mut by_team: Vec<(String, String, Decimal)> = m
        .teams
        .iter()
        .map(|t| (t.terms.id.clone(), t.terms.name.clone(), t.usage.usage_cost))
        .collect();
    if !a.unattributed_total.is_zero() {
        by_team.push((String::new(), "Unattributed".into(), a.unattributed_total));
    }
    let mut by_model: BTreeMap<(&str, &str), Decimal> = BTreeMap::new();
    let mut by_day: BTreeMap<String, Decimal> = BTreeMap::new();
    if let Ok(first) = NaiveDate::parse_from_str(&format!("{}-01", m.period), "%Y-%m-%d") {
        for d in first
            .iter_days()
            .take_while(|d| d.month0() == first.month0())
        {
            by_day.insert(d.to_string(), Decimal::ZERO);
        }
    }
    for r in m.rows {
        let cost = r.billed_cost + r.estimated;
        *by_model.entry((&r.provider, &r.model)).or_default() += cost;
        *by_day.entry(r.day.clone()).or_default() += cost;
    }
    let by_model: Vec<(String, String, Decimal)> = by_model
        .into_iter()
        .map(|((p, model), v)| {
            let label = if model.is_empty() {
                format!("{p} (model not stated)")
            } else {
                format!("{model} ({p})")
            };
            (format!("{p}/{model}"), label, v)
        })
        .collect();
    let by_day: Vec<(String, String, Decimal)> = by_day
        .into_iter()
        .map(|(day, v)| {
            let label = day
                .rsplit('-')
                .next()
                .unwrap_or(&day)
                .trim_start_matches('0');
            (day.clone(), label.to_string(), v)
        })
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in m.exceptions {
        *counts.entry(e.kind.as_str()).or_default() += 1;
    }
    MonthView {
        period: m.period.clone(),
        currency: m.org.currency.clone(),
        issuer: Issuer {
            name: m.org.name.clone(),
            address: m.org.address.clone(),
            cost_center: m.org.cost_center.clone(),
            contact: m.org.contact.clone(),
            dispute: m.org.dispute.clone(),
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
        usage_total: money(a.attributed_total + a.unattributed_total),
        ties_to_bill: a.attributed_total + a.unattributed_total
            == a.billed_total + a.estimated_total
            && m.tie_breaks.is_empty(),
        tie_breaks: m.tie_breaks,
        invoices,
        providers,
        other_billed_charges: m.other,
        other_billed_total: money(m.other_total),
        bridge,
        other_services_rows: m.other_services.rows,
        other_services_total: money(m.other_services.cost),
        rejected_bill_rows: m.rejected_bill_rows,
        inputs: m.inputs,
        exceptions: counts
            .into_iter()
            .map(|(k, count)| ExceptionCount {
                kind: k.to_string(),
                count,
            })
            .collect(),
        exception_total: m.exceptions.len(),
        top_exceptions: top_exceptions(m.exceptions),
        cost_by_team: chart(by_team, true, m.scale),
        cost_by_model: chart(by_model, true, m.scale),
        daily_cost: chart(by_day, false, m.scale),
    }
}

/// The value-based part of an invoice: outcomes by name (the rated ones
/// with their lines' amounts, the unrated ones counted and charged
/// nothing), the seats, and the margin over the usage cost.
fn value_view(t: &TeamResult<'_>, scale: u32) -> ValueView {
    let money = |d: Decimal| format_amount(d, scale);
    let names: BTreeSet<&String> = t
        .terms
        .outcome_rates
        .keys()
        .chain(t.outcomes.outcomes.keys())
        .collect();
    let outcomes: Vec<OutcomeView> = names
        .into_iter()
        .map(|o| {
            let count = t.outcomes.outcomes.get(o).copied().unwrap_or(0);
            let rate = t.terms.outcome_rates.get(o);
            OutcomeView {
                outcome: o.clone(),
                count,
                rate: rate.map(ToString::to_string),
                amount: rate.map(|r| money(round_line(Decimal::from(count) * r, scale))),
            }
        })
        .collect();
    let outcome_count = outcomes.iter().fold(0u64, |a, o| a.saturating_add(o.count));
    let seats = t.terms.seat_rate.map(|r| {
        let n = t.terms.seats.unwrap_or(t.outcomes.users);
        SeatView {
            seats: n,
            basis: if t.terms.seats.is_some() {
                "policy"
            } else {
                "distinct_users"
            }
            .into(),
            rate: r.to_string(),
            amount: money(t.charges.sum(ChargeKind::SeatCharge)),
        }
    });
    let value = t.charges.sum(ChargeKind::OutcomeCharge) + t.charges.sum(ChargeKind::SeatCharge);
    let cost = t.usage.usage_cost;
    ValueView {
        outcomes,
        outcome_count,
        seats,
        users: t.outcomes.users,
        value_charges: money(value),
        usage_cost: money(cost),
        margin: money(value - cost),
        cost_per_outcome: (outcome_count > 0).then(|| {
            format_amount(
                round_line(cost / Decimal::from(outcome_count), scale + 2),
                scale + 2,
            )
        }),
    }
}

/// What an estimated line's description adds: which catalog price sets
/// priced it, by the day each took effect (` (estimated, catalog prices of
/// 2025-01-01 and 2025-01-15)` for a month that straddles a change).
fn estimated_note(prices_from: &[NaiveDate]) -> String {
    format!(" (estimated, {})", price_versions(prices_from))
}

/// The share of requests that failed, in percent to one place; `None`
/// when none did.
pub fn error_rate(failed: u64, requests: u64) -> Option<String> {
    if failed == 0 || requests == 0 {
        return None;
    }
    let r = Decimal::from(failed) * Decimal::ONE_HUNDRED / Decimal::from(requests);
    Some(format!("{}%", r.round_dp(1).normalize()))
}

/// `catalog prices of 2025-01-01 and 2025-01-15`, or `no catalog price`.
fn price_versions(prices_from: &[NaiveDate]) -> String {
    let days: Vec<String> = prices_from.iter().map(ToString::to_string).collect();
    match days.split_last() {
        None => "no catalog price".to_string(),
        Some((last, [])) => format!("catalog prices of {last}"),
        Some((last, rest)) => format!("catalog prices of {} and {last}", rest.join(", ")),
    }
}

/// How many exceptions the summary and the run's report spell out.
pub const TOP_EXCEPTIONS: usize = 10;

/// The most severe exceptions first (then in `exceptions.csv` order).
fn top_exceptions(exceptions: &[Exception]) -> Vec<ExceptionView> {
    let mut sorted: Vec<&Exception> = exceptions.iter().collect();
    sorted.sort_by_key(|e| e.kind.severity());
    sorted
        .into_iter()
        .take(TOP_EXCEPTIONS)
        .map(|e| ExceptionView {
            kind: e.kind.as_str().to_string(),
            label: e.kind.label().to_string(),
            at: [&e.provider, &e.day, &e.model, &e.team, &e.source]
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" · "),
            detail: e.detail.clone(),
        })
        .collect()
}

/// Per provider: billed usage + other charges = the invoice total (the
/// total rounded once, usage rounded once, other charges the difference),
/// and who carries the unattributed usage and the other charges.
fn bridge(
    rows: &[ReconRow],
    other: &BTreeMap<String, Decimal>,
    carried_by: &BTreeMap<String, String>,
    policy: &UnattributedPolicy,
    scale: u32,
) -> Vec<BridgeRow> {
    let mut per: BTreeMap<&str, [Decimal; 4]> = BTreeMap::new();
    for r in rows {
        let e = per.entry(&r.provider).or_default();
        e[0] += r.billed_cost;
        e[1] += r.attributed;
        e[2] += r.unattributed;
    }
    for (p, v) in other {
        per.entry(p).or_default()[3] += *v;
    }
    let money = |d: Decimal| format_amount(d, scale);
    per.into_iter()
        // Providers priced from the catalog sent no invoice.
        .filter(|(_, v)| !(v[0].is_zero() && v[3].is_zero()))
        .map(|(p, v)| {
            let usage = v[0].round_dp(scale);
            let total = (v[0] + v[3]).round_dp(scale);
            BridgeRow {
                provider: p.to_string(),
                usage_billed: money(usage),
                other_charges: money(total - usage),
                invoice_total: money(total),
                attributed: money(v[1]),
                unattributed: money(v[2]),
                unattributed_carried_by: match policy {
                    _ if v[2].is_zero() => "—".to_string(),
                    UnattributedPolicy::Report => {
                        "no team: reported as unattributed (policy `report`)".to_string()
                    }
                    UnattributedPolicy::Proportional => {
                        "every team, in proportion to its attributed cost (policy `proportional`)"
                            .to_string()
                    }
                    UnattributedPolicy::Team(t) => format!("team `{t}` (policy `team:{t}`)"),
                    UnattributedPolicy::Fixed(shares) => format!(
                        "{} (policy `fixed`)",
                        shares
                            .iter()
                            .map(|(t, w)| format!(
                                "`{t}` {}%",
                                (*w * Decimal::ONE_HUNDRED).normalize()
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
                other_charges_carried_by: if v[3].is_zero() {
                    "—".to_string()
                } else if let Some(who) = carried_by.get(p) {
                    who.clone()
                } else {
                    "no team: listed under other billed charges, on no invoice".to_string()
                },
            }
        })
        .collect()
}

/// Chart bars from `(key, label, exact amount)`: amounts rounded for print,
/// lengths relative to the largest amount (negative amounts draw no bar).
/// `largest_first` sorts by amount, descending, ties by key.
fn chart(
    mut items: Vec<(String, String, Decimal)>,
    largest_first: bool,
    scale: u32,
) -> Vec<ChartBar> {
    if largest_first {
        items.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    }
    let max = items.iter().map(|i| i.2).max().unwrap_or_default();
    items
        .into_iter()
        .map(|(key, label, v)| {
            let bar = if max > Decimal::ZERO && v > Decimal::ZERO {
                (v / max * Decimal::ONE_HUNDRED).round_dp(1)
            } else {
                Decimal::ZERO
            };
            ChartBar {
                key,
                label,
                amount: format_amount(v, scale),
                bar: bar.normalize().to_string(),
            }
        })
        .collect()
}

/// `ledger.csv`: every invoice line of the month, in invoice order.
pub fn ledger_csv(month: &MonthView) -> Vec<u8> {
    let rows = month.invoices.iter().flat_map(|inv| {
        inv.lines.iter().enumerate().map(move |(i, l)| {
            [
                inv.invoice_number.clone(),
                inv.team.clone(),
                inv.cost_center.clone().unwrap_or_default(),
                (i + 1).to_string(),
                l.kind.clone(),
                l.provider.clone(),
                l.model.clone(),
                l.use_case.clone(),
                l.tokens.map(|t| t.to_string()).unwrap_or_default(),
                l.requests.map(|t| t.to_string()).unwrap_or_default(),
                l.estimated.to_string(),
                l.rate.clone().unwrap_or_default(),
                l.amount.clone(),
                month.currency.clone(),
                l.description.clone(),
            ]
        })
    });
    csv_bytes(schema::ledger::LEDGER, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimated_lines_name_the_price_sets_that_priced_them() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(estimated_note(&[]), " (estimated, no catalog price)");
        assert_eq!(
            estimated_note(&[d("2025-01-01")]),
            " (estimated, catalog prices of 2025-01-01)"
        );
        assert_eq!(
            estimated_note(&[d("2025-01-01"), d("2025-01-15")]),
            " (estimated, catalog prices of 2025-01-01 and 2025-01-15)"
        );
        assert_eq!(
            estimated_note(&[d("2024-12-01"), d("2025-01-10"), d("2025-01-20")]),
            " (estimated, catalog prices of 2024-12-01, 2025-01-10 and 2025-01-20)"
        );
    }

    #[test]
    fn team_ids_cannot_escape_the_folder() {
        assert_eq!(file_stem("support"), "support");
        assert_eq!(file_stem("../../etc/passwd"), "______etc_passwd");
        assert_eq!(file_stem(".."), "team___");
        assert_eq!(file_stem("<script>"), "_script_");
        assert_eq!(file_stem("Data Science"), "Data_Science");
    }
}

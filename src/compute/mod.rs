//! Stage two, pure: reconcile the bill with the logs, attribute every
//! billed cent to a team, charge each team under its terms, check budgets
//! and build the view model. No store, no clock: the same [`Inputs`] and
//! policy give the same [`Month`].

pub mod amend;
pub mod attribute;
pub mod budget;
pub mod chargeback;
pub mod compare;
pub mod insights;
pub mod invoice;
pub mod journal;
pub mod lineage;
pub mod pools;
pub mod reconcile;
pub mod refine;
pub mod whatif;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::config::{BudgetBasis, ChargebackModel, Policy, TeamTerms};
use crate::error::Result;
use crate::load::Inputs;
use crate::load::ingest::openai::PageLink;
use crate::load::ingest::{
    Bill, BilledLine, OtherServices, QuarantineKind, QuarantinedRow, truncated_pages,
};
use crate::load::notes::PendingNote;
use crate::money::{Decimal, format_amount, minor_units};
use crate::period::Period;
use crate::schema;
use crate::text::count;
use attribute::{TeamUsage, attribute};
use budget::{BudgetLevel, budget_status};
use chargeback::{TeamOutcomes, charge};
use invoice::{InputCounts, MonthInput, MonthView, OtherCharge, RejectedBillRow, TeamResult};
use lineage::{Lineage, lineage};
use reconcile::{Exception, ExceptionKind, ReconRow, Tolerances, reconcile};

/// A computed month: the view model every document is rendered from, and
/// the rows of the ledgers that go with it.
pub struct Month<'a> {
    pub view: MonthView,
    /// Per provider, day and model: the bill against the logs.
    pub reconciliation: Vec<ReconRow>,
    /// Every exception, in the order of `exceptions.csv`.
    pub exceptions: Vec<Exception>,
    /// Teams whose budget is at the critical level (`--fail-on budget`).
    pub critical_budgets: Vec<String>,
    /// What the load set aside, for `quarantine/`.
    pub quarantine: Quarantine<'a>,
    /// Minor units of the invoice currency.
    pub scale: u32,
    /// The `--as-of` date the month was computed for.
    pub as_of: Option<NaiveDate>,
    /// Notes of earlier months carried as adjustment lines.
    pub carried: &'a [PendingNote],
    /// Where every invoice line's amount came from.
    pub lineage: Lineage,
    /// `journal.csv`'s entries, when the policy has `[gl]`.
    pub journal: Option<journal::Journal>,
    /// The summary's what-if panel data (a month as run, not a scenario).
    pub panel: Option<whatif::Panel>,
    /// A scenario's month: what each of its changes did, per team.
    pub applied: whatif::Applied,
    /// `insights.json`, and the summary's Insights section.
    pub insights: insights::Insights,
}

/// Rows set aside, by the file they are written to.
pub struct Quarantine<'a> {
    /// Request rows that failed a check.
    pub requests: Vec<&'a QuarantinedRow>,
    /// Request rows dropped as repeats of an earlier request id.
    pub duplicates: Vec<&'a QuarantinedRow>,
    /// Bill rows that failed a check, sorted.
    pub billing: Vec<&'a QuarantinedRow>,
    /// Outcome rows that failed a check or repeated a reference, sorted.
    pub outcomes: Vec<&'a QuarantinedRow>,
}

/// The month of `inputs` under `policy`, as of `as_of` (the close of the
/// period when `None`). Fails only on a policy the month shows to be
/// short of something: with `[gl]`, an invoiced team without a cost centre.
pub fn compute<'a>(
    inputs: &'a Inputs,
    policy: &Policy,
    as_of: Option<NaiveDate>,
) -> Result<Month<'a>> {
    compute_with(inputs, policy, as_of, None)
}

/// [`compute`], with a scenario's usage changes applied to the reconciled
/// cells before attribution (`compare`): the same stages, other usage.
pub fn compute_with<'a>(
    inputs: &'a Inputs,
    policy: &Policy,
    as_of: Option<NaiveDate>,
    changes: Option<&whatif::Changes>,
) -> Result<Month<'a>> {
    let period = inputs.period;
    let catalog = &inputs.catalog;
    let log = &inputs.requests;
    let scale = minor_units(&policy.organization.currency);

    let mut lines: Vec<BilledLine> = Vec::new();
    let mut billing_quarantine: Vec<&QuarantinedRow> = Vec::new();
    let mut billing_rows = 0u64;
    let mut reported_usage = Vec::new();
    let mut bill_sources: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    let mut bill_exceptions: Vec<Exception> = Vec::new();
    let mut tie_breaks: Vec<String> = Vec::new();
    let mut other_services = OtherServices::default();
    let mut pages: BTreeMap<&'static str, Vec<(&str, &PageLink)>> = BTreeMap::new();
    for loaded in &inputs.bills {
        let (url, bill) = (loaded.url.as_str(), &loaded.bill);
        let format = loaded.format.name();
        billing_rows += bill.rows_read;
        if let Some(e) = bill_period_exception(url, bill, period) {
            tie_breaks.push(e.detail.clone());
            bill_exceptions.push(e);
        }
        other_services.rows += bill.other_services.rows;
        other_services.cost += bill.other_services.cost;
        pages
            .entry(format)
            .or_default()
            .extend(bill.pages.iter().map(|p| (url, p)));
        let providers = bill.lines.iter().map(|l| &l.provider);
        for p in providers.chain(bill.usage.iter().map(|u| &u.provider)) {
            bill_sources.entry(p.clone()).or_default().insert(format);
        }
        lines.extend(bill.lines.iter().cloned());
        reported_usage.extend(bill.usage.iter().cloned());
        billing_quarantine.extend(&bill.quarantine);
    }
    for links in pages.values() {
        for (url, p) in truncated_pages(links) {
            let detail = format!(
                "`{url}` page {} says `has_more: true`{}, but no input holds the page that follows{}: its money is missing from the month",
                p.page,
                p.next_page
                    .as_ref()
                    .map(|c| format!(" (next_page `{c}`)"))
                    .unwrap_or_default(),
                p.last_end
                    .as_ref()
                    .map(|e| format!(" (from `{e}`)"))
                    .unwrap_or_default(),
            );
            tie_breaks.push(detail.clone());
            bill_exceptions.push(Exception {
                source: url.to_string(),
                ..Exception::new(ExceptionKind::TruncatedExport, detail)
            });
        }
    }
    if !billing_quarantine.is_empty() {
        tie_breaks.push(format!(
            "{} (see quarantine/billing.csv): the provider's invoice total is not what was split",
            count(
                billing_quarantine.len() as u64,
                "rejected bill row",
                "rejected bill rows"
            )
        ));
    }
    // Cost lines without model or quantity, cut by the provider's usage.
    let lines = refine::refine(lines, &reported_usage, catalog);

    let tol = Tolerances {
        min_coverage: policy.reconciliation.min_coverage,
        max_price_variance: policy.reconciliation.max_price_variance,
    };
    let mut rec = reconcile(&lines, &log.cells, catalog, tol);
    let (cells, applied) = match changes {
        Some(c) => {
            let currency = &policy.organization.currency;
            let (cells, applied) =
                whatif::apply(c, &log.cells, &mut rec, catalog, period, scale, currency)?;
            (std::borrow::Cow::Owned(cells), applied)
        }
        None => (
            std::borrow::Cow::Borrowed(log.cells.as_slice()),
            whatif::Applied::default(),
        ),
    };
    let cells: &[crate::load::ingest::UsageCell] = &cells;
    let attribution = attribute(cells, &rec, &policy.reconciliation.unattributed, scale);
    let traced = std::mem::take(&mut rec.lines);
    let mut lineage = if changes.is_some() {
        Lineage::default()
    } else {
        lineage(cells, &rec, &attribution, traced, scale)
    };
    let mut exceptions: Vec<Exception> = rec.exceptions.clone();
    exceptions.extend(bill_exceptions);

    // Every team in the logs, every team of the policy (fixed fees are
    // due without usage), and every team an earlier month's note is due to.
    let empty: BTreeMap<String, TeamUsage> = policy
        .teams
        .keys()
        .chain(inputs.notes.iter().map(|n| &n.team))
        .filter(|t| !attribution.teams.contains_key(*t))
        .map(|t| {
            (
                t.clone(),
                TeamUsage {
                    team: t.clone(),
                    lines: Vec::new(),
                    usage_cost: Decimal::ZERO,
                    exact: Decimal::ZERO,
                    tokens: 0,
                    requests: 0,
                },
            )
        })
        .collect();
    let mut all_usage: Vec<&TeamUsage> = attribution.teams.values().chain(empty.values()).collect();
    all_usage.sort_by(|a, b| a.team.cmp(&b.team));

    let issue_date = as_of.unwrap_or_else(|| period.end());
    let other: Vec<&BilledLine> = lines.iter().filter(|l| !l.is_usage()).collect();
    let costs: BTreeMap<String, Decimal> = all_usage
        .iter()
        .map(|u| (u.team.clone(), u.usage_cost))
        .collect();
    let pools = pools::spread_pools(policy, &costs, &other, scale);
    for why in pools.iter().filter_map(|p| p.uncarried.clone()) {
        exceptions.push(Exception::new(ExceptionKind::SharedCostUncarried, why));
    }
    let mut failed: BTreeMap<&str, (u64, Decimal)> = BTreeMap::new();
    for (c, cost) in cells.iter().zip(&rec.cell_failed) {
        let e = failed.entry(c.team.as_str()).or_default();
        e.0 += c.errors;
        e.1 += *cost;
    }
    let mut value = team_outcomes(log, &inputs.outcomes.counts);
    let mut teams = Vec::new();
    let mut critical_budgets = Vec::new();
    for usage in all_usage {
        let terms = policy.terms(&usage.team);
        if !terms.in_policy {
            exceptions.push(Exception {
                team: usage.team.clone(),
                ..Exception::new(
                    ExceptionKind::TeamNotInPolicy,
                    format!(
                        "team `{}` is in the logs but not in [teams]; invoiced under the defaults",
                        usage.team
                    ),
                )
            });
        }
        let outcomes = value.remove(&usage.team).unwrap_or_default();
        exceptions.extend(unpriced_outcomes(&terms, &outcomes));
        let mut charges = charge(usage, &terms, &outcomes, scale);
        for line in pools.iter().filter_map(|p| p.lines.get(&usage.team)) {
            charges.add(line.clone());
        }
        let adjustments = policy.adjustments.iter().map(toml::Spanned::get_ref);
        for a in adjustments.filter(|a| a.team == usage.team) {
            charges.add(pools::adjustment_line(a, scale));
        }
        let mut carried = Decimal::ZERO;
        for note in inputs.notes.iter().filter(|n| n.team == usage.team) {
            carried += note.amount;
            charges.add(note.adjustment());
        }
        // A note corrects an earlier month: not this month's spending.
        lineage.charges.insert(usage.team.clone(), charges.clone());
        let spent = match terms.budget_basis {
            BudgetBasis::Total => charges.total - carried,
            BudgetBasis::Usage => usage.usage_cost,
        };
        let budget = budget_status(
            spent,
            terms.budget,
            terms.alert_threshold,
            period,
            as_of,
            scale,
        );
        if budget.status == BudgetLevel::Critical {
            critical_budgets.push(usage.team.clone());
        }
        let (failed_requests, failed_cost) =
            failed.get(usage.team.as_str()).copied().unwrap_or_default();
        if let Some(max) = policy.reconciliation.max_error_rate
            && usage.requests > 0
            && Decimal::from(failed_requests) > max * Decimal::from(usage.requests)
        {
            exceptions.push(Exception {
                team: usage.team.clone(),
                ..Exception::new(
                    ExceptionKind::ErrorRateAboveMaximum,
                    format!(
                        "{} of `{}`'s {} failed ({}), above the maximum {}; retries multiply cost",
                        count(failed_requests, "request", "requests"),
                        usage.team,
                        usage.requests,
                        invoice::error_rate(failed_requests, usage.requests).unwrap_or_default(),
                        max.normalize()
                    ),
                )
            });
        }
        teams.push(TeamResult {
            terms,
            usage,
            charges,
            budget,
            failed_requests,
            failed_cost,
            outcomes,
        });
    }
    // Outcomes of a team no invoice is issued to: counted, charged to no one.
    for (team, v) in &value {
        for (outcome, n) in &v.outcomes {
            exceptions.push(Exception {
                team: team.clone(),
                ..Exception::new(
                    ExceptionKind::OutcomeWithoutRate,
                    format!(
                        "{} `{outcome}` counted for team `{team}`, which has no invoice this month (not in [teams], no usage): charged nothing",
                        count(*n, "outcome", "outcomes")
                    ),
                )
            });
        }
    }
    for (source, n) in count_by_source(
        log.quarantine
            .iter()
            .chain(billing_quarantine.iter().copied())
            .chain(&inputs.outcomes.quarantine),
    ) {
        exceptions.push(Exception {
            source: source.clone(),
            ..Exception::new(
                ExceptionKind::QuarantinedRows,
                format!(
                    "{} of `{source}` quarantined",
                    count(n as u64, "row", "rows")
                ),
            )
        });
    }
    exceptions.extend(similar_team_ids(policy, &attribution.teams));
    exceptions.sort();

    let panel = changes.is_none().then(|| {
        whatif::panel(&whatif::PanelInput {
            policy,
            catalog,
            cells,
            rec: &rec,
            attribution: &attribution,
            teams: &teams,
            pools: &pools,
            scale,
        })
    });
    let other_total: Decimal = other.iter().map(|l| l.cost).sum();
    let mut other_by_provider: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in &other {
        *other_by_provider.entry(l.provider.clone()).or_default() += l.cost;
    }
    billing_quarantine.sort();
    let rejected_bill_rows = billing_quarantine
        .iter()
        .map(|q| RejectedBillRow {
            source: format!("{}:{}", q.source, q.row),
            column: q.column.clone(),
            reason: q.reason.clone(),
            cost: q.field(schema::quarantine::COST).to_string(),
        })
        .collect();
    let other_charges: Vec<OtherCharge> = other
        .iter()
        .map(|l| OtherCharge {
            provider: l.provider.clone(),
            category: if l.correction {
                format!("{} (correction)", l.category.as_str())
            } else {
                l.category.as_str().to_string()
            },
            description: l.description.clone().unwrap_or_default(),
            amount: format_amount(l.cost, scale),
            source: format!("{}:{}", l.source, l.row),
            fx: l.fx.as_ref().map(|c| {
                format!(
                    "converted from {} {} at {} (rate of {})",
                    c.rate.from, c.cost, c.rate.rate, c.rate.effective_from
                )
            }),
        })
        .collect();
    let (duplicates, requests): (Vec<&QuarantinedRow>, Vec<&QuarantinedRow>) = log
        .quarantine
        .iter()
        .partition(|q| q.kind == QuarantineKind::Duplicate);
    let counts = InputCounts {
        request_rows: log.stats.rows_read,
        requests_used: log.stats.used,
        failed_requests: log.stats.errors,
        duplicates_dropped: log.stats.duplicates,
        quarantined_requests: log.stats.quarantined,
        outside_period: log.stats.outside_period,
        failed_excluded: log.stats.failed_excluded,
        billing_rows,
        quarantined_billing_rows: billing_quarantine.len() as u64,
        rows_not_listed: log.engine.as_ref().map_or(0, |e| e.unlisted_rows),
        outcome_rows: inputs.outcomes.stats.rows_read,
        outcomes_counted: inputs.outcomes.stats.used,
        quarantined_outcome_rows: inputs.outcomes.stats.quarantined,
        duplicate_outcome_rows: inputs.outcomes.stats.duplicates,
        outcome_rows_outside_period: inputs.outcomes.stats.outside_period,
    };
    let other_carried_by = pooled_charges(policy, &other);
    let view = invoice::build_month(MonthInput {
        period: period.to_string(),
        org: &policy.organization,
        issue_date,
        scale,
        attribution: &attribution,
        teams,
        rows: &rec.rows,
        other: other_charges,
        other_total,
        other_by_provider,
        unattributed_policy: &policy.reconciliation.unattributed,
        tie_breaks,
        other_services,
        rejected_bill_rows,
        inputs: counts,
        exceptions: &exceptions,
        bill_sources: &bill_sources,
        other_carried_by,
    });
    let journal = journal::post(&view, policy, scale)?;
    let insights = insights::insights(&insights::InsightsInput {
        period: &view.period,
        cells: &log.cells,
        reconciled: &rec,
        catalog,
        view: &view,
        usage: &attribution.teams,
        outcomes: [&log.outcomes, &inputs.outcomes.counts],
        conversations: &log.conversations,
        scale,
    });
    Ok(Month {
        view,
        reconciliation: rec.rows,
        exceptions,
        critical_budgets,
        quarantine: Quarantine {
            requests,
            duplicates,
            billing: billing_quarantine,
            outcomes: inputs.outcomes.quarantine.iter().collect(),
        },
        scale,
        as_of,
        carried: &inputs.notes,
        lineage,
        journal,
        panel,
        applied,
        insights,
    })
}
/// Per team, the outcomes of the month — the request logs' and the
/// outcome sources', added — and the distinct users of its requests.
fn team_outcomes(
    log: &crate::load::ingest::requests::RequestLog,
    sources: &BTreeMap<(String, String), u64>,
) -> BTreeMap<String, TeamOutcomes> {
    let mut by_team: BTreeMap<String, TeamOutcomes> = BTreeMap::new();
    for ((team, outcome), n) in log.outcomes.iter().chain(sources) {
        let c = by_team
            .entry(team.clone())
            .or_default()
            .outcomes
            .entry(outcome.clone())
            .or_default();
        *c = c.saturating_add(*n);
    }
    for (team, users) in &log.users {
        by_team.entry(team.clone()).or_default().users = *users;
    }
    by_team
}

/// An exception per outcome a team counted but has no rate for: it is
/// charged nothing, which finance should know.
fn unpriced_outcomes(terms: &TeamTerms, value: &TeamOutcomes) -> Vec<Exception> {
    value
        .outcomes
        .iter()
        .filter(|(o, _)| !terms.outcome_rates.contains_key(*o))
        .map(|(outcome, n)| {
            let n = count(*n, "outcome", "outcomes");
            let team = &terms.id;
            let detail = if terms.model == ChargebackModel::ValueBased {
                format!(
                    "team `{team}` counted {n} `{outcome}`, which [teams.{team}.outcome_rates] has no rate for: charged nothing"
                )
            } else {
                format!(
                    "team `{team}` counted {n} `{outcome}`, but is charged {}, not value-based: charged nothing",
                    terms.model.label()
                )
            };
            Exception {
                team: team.clone(),
                ..Exception::new(ExceptionKind::OutcomeWithoutRate, detail)
            }
        })
        .collect()
}

/// Per provider whose other charges shared-cost pools take: who carries
/// them, in words.
fn pooled_charges(policy: &Policy, other: &[&BilledLine]) -> BTreeMap<String, String> {
    let mut by: BTreeMap<&str, (BTreeSet<&str>, bool)> = BTreeMap::new();
    for l in other {
        let pool = policy
            .shared_costs
            .iter()
            .map(toml::Spanned::get_ref)
            .find(|p| p.bill_category() == Some(l.category));
        let e = by.entry(&l.provider).or_default();
        match pool {
            Some(p) => {
                e.0.insert(&p.name);
            }
            None => e.1 = true,
        }
    }
    by.into_iter()
        .filter(|(_, (pools, _))| !pools.is_empty())
        .map(|(provider, (pools, rest))| {
            let names: Vec<String> = pools.iter().map(|n| format!("`{n}`")).collect();
            let mut who = format!("teams, through shared cost {}", names.join(", "));
            if rest {
                who.push_str("; the rest on no invoice");
            }
            (provider.to_string(), who)
        })
        .collect()
}

/// A bill source that holds nothing of the period: every row of another
/// month (the wrong file under this month's name), or no row at all.
fn bill_period_exception(url: &str, bill: &Bill, period: Period) -> Option<Exception> {
    let of_period = bill.lines.len() + bill.usage.len() + bill.quarantine.len();
    if of_period > 0 || bill.other_services.rows > 0 {
        return None;
    }
    let (kind, detail) = match bill.outside_days {
        Some((first, last)) => (
            ExceptionKind::BillOutsidePeriod,
            format!(
                "`{url}`: {} read, none in {period} (they run from {first} to {last}); is this the right month's bill?",
                count(bill.rows_read, "row", "rows")
            ),
        ),
        None if bill.rows_read == 0 => (
            ExceptionKind::BillWithoutRows,
            format!("`{url}` holds no bill rows"),
        ),
        None => return None,
    };
    Some(Exception {
        source: url.to_string(),
        ..Exception::new(kind, detail)
    })
}

/// Policy teams without usage whose id is one or two edits from a team in
/// the logs that the policy does not list (`[teams.suport]`, logs'
/// `support`): most likely a typo that invoices the logged team under the
/// defaults.
fn similar_team_ids(policy: &Policy, used: &BTreeMap<String, TeamUsage>) -> Vec<Exception> {
    let unlisted: Vec<&TeamUsage> = used
        .values()
        .filter(|u| !policy.teams.contains_key(&u.team))
        .collect();
    policy
        .teams
        .keys()
        .filter(|t| !used.contains_key(*t))
        .filter_map(|t| {
            let near = unlisted
                .iter()
                .filter(|u| edit_distance(t, &u.team) <= 2)
                .min_by_key(|u| (edit_distance(t, &u.team), u.team.clone()))?;
            Some(Exception {
                team: t.clone(),
                ..Exception::new(
                    ExceptionKind::TeamWithoutUsage,
                    format!(
                        "team `{t}` is in [teams] but has no usage; did you mean `{}` (in the logs with {}, invoiced under the defaults)?",
                        near.team,
                        count(near.requests, "request", "requests")
                    ),
                )
            })
        })
        .collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn count_by_source<'a>(rows: impl Iterator<Item = &'a QuarantinedRow>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        if r.kind == QuarantineKind::Invalid {
            *m.entry(r.source.clone()).or_default() += 1;
        }
    }
    m
}

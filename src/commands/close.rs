//! The month-end pipeline shared by `run` and `validate`:
//! store → ingest → reconcile → attribute → chargeback → invoice → render.
//! It reads through the context and returns every output in memory;
//! publishing is the caller's choice.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rayon::prelude::*;

use super::count;
use crate::compute::attribute::{TeamUsage, attribute};
use crate::compute::budget::{BudgetLevel, budget_status};
use crate::catalog::Catalog;
use crate::compute::chargeback::charge;
use crate::config::Policy;
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::load::ingest::openai::PageLink;
use crate::load::ingest::requests::{RequestSource, load_requests};
use crate::load::ingest::{
    Bill, BilledLine, OtherServices, QuarantineKind, QuarantinedRow, detect, load_bill,
    truncated_pages,
};
use crate::compute::invoice::{
    InputCounts, Month, MonthInput, OtherCharge, RejectedBillRow, TeamResult, build_month,
};
use crate::seal::{Manifest, Totals};
use crate::money::{Decimal, format_amount, minor_units};
use crate::period::Period;
use crate::publish::{Outputs, csv_bytes};
use crate::compute::reconcile::{Exception, ExceptionKind, Tolerances, reconcile};
use crate::render::html::HtmlRenderer;
use crate::render::pdf::PdfRenderer;
use crate::schema;
use crate::load::store::ObjectRecord;

/// A closed month, ready to publish.
pub struct Closed {
    pub policy: Policy,
    pub month: Month,
    pub outputs: Outputs,
    pub manifest: Manifest,
    pub critical_budgets: Vec<String>,
}

pub struct MonthRequest<'a> {
    pub config: &'a str,
    pub period: Period,
    pub as_of: Option<NaiveDate>,
}

pub fn close_month(ctx: &Context, req: &MonthRequest<'_>) -> Result<Closed> {
    let period = req.period;
    let stage = ctx.progress.stage("policy, catalog, inputs listed");
    let policy_text = ctx.store.read_text(req.config).map_err(|e| match e {
        // The policy is named on the command line, not in [sources].
        Error::Input { .. } if e.hint().is_some_and(|h| h.contains("[sources]")) => {
            e.with_hint("check the `--config` path")
        }
        e => e,
    })?;
    let policy = Policy::parse(&policy_text, req.config)?;
    ctx.store.configure(&policy.storage)?;
    let policy_record = ctx.store.record(req.config)?;

    let catalog_url = period.expand(&policy.sources.catalog);
    let catalog = Catalog::parse(&ctx.store.read_text(&catalog_url)?, &catalog_url)?;
    let catalog_record = ctx.store.record(&catalog_url)?;
    let currency = policy.organization.currency.clone();
    if catalog.currency != currency {
        return Err(Error::policy(
            Location::file(&catalog_url),
            format!(
                "the catalog prices in `{}` but invoices are in `{currency}`",
                catalog.currency
            ),
        ));
    }
    let scale = minor_units(&currency);

    let mut request_sources: Vec<RequestSource> = Vec::new();
    for spec in &policy.sources.requests {
        for url in ctx.store.list(&period.expand(spec.url()))? {
            let format = match spec.format() {
                Some(f) => f,
                None => detect::request_format(ctx, &url, spec.file_format())?,
            };
            request_sources.push(RequestSource {
                url,
                format,
                file_format: spec.file_format(),
            });
        }
    }
    // One order whatever the order of the policy's list.
    request_sources.sort_by(|a, b| a.url.cmp(&b.url));
    request_sources.dedup_by(|a, b| a.url == b.url);
    stage.done();
    let log = load_requests(
        ctx,
        &request_sources,
        &policy.sources,
        &catalog,
        period,
        policy.reconciliation.failed_requests,
    )?;

    let stage = ctx.progress.stage("bills");
    let mut lines: Vec<BilledLine> = Vec::new();
    let mut billing_quarantine: Vec<QuarantinedRow> = Vec::new();
    let mut billing_rows = 0u64;
    let mut billing_urls: Vec<String> = Vec::new();
    let mut reported_usage = Vec::new();
    let mut bill_sources: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    let mut bill_exceptions: Vec<Exception> = Vec::new();
    let mut tie_breaks: Vec<String> = Vec::new();
    let mut other_services = OtherServices::default();
    let mut pages: BTreeMap<&'static str, Vec<(String, PageLink)>> = BTreeMap::new();
    for spec in &policy.sources.billing {
        for url in ctx.store.list(&period.expand(&spec.url))? {
            let (format, bill) = load_bill(ctx, &url, spec, &catalog, period, &currency)?;
            billing_rows += bill.rows_read;
            if let Some(e) = bill_period_exception(&url, &bill, period) {
                tie_breaks.push(e.detail.clone());
                bill_exceptions.push(e);
            }
            other_services.rows += bill.other_services.rows;
            other_services.cost += bill.other_services.cost;
            pages
                .entry(format.name())
                .or_default()
                .extend(bill.pages.iter().map(|p| (url.clone(), p.clone())));
            let providers = bill.lines.iter().map(|l| &l.provider);
            for p in providers.chain(bill.usage.iter().map(|u| &u.provider)) {
                bill_sources
                    .entry(p.clone())
                    .or_default()
                    .insert(format.name());
            }
            lines.extend(bill.lines);
            reported_usage.extend(bill.usage);
            billing_quarantine.extend(bill.quarantine);
            billing_urls.push(url);
        }
    }
    billing_urls.sort();
    billing_urls.dedup();
    for links in pages.values() {
        let links: Vec<(&str, &PageLink)> = links.iter().map(|(u, p)| (u.as_str(), p)).collect();
        for (url, p) in truncated_pages(&links) {
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
    let lines = crate::compute::refine::refine(lines, &reported_usage, &catalog);
    stage.done();

    let tol = Tolerances {
        min_coverage: policy.reconciliation.min_coverage,
        max_price_variance: policy.reconciliation.max_price_variance,
    };
    let stage = ctx.progress.stage("reconcile, attribute, charge back");
    let rec = reconcile(&lines, &log.cells, &catalog, tol);
    let attribution = attribute(&log.cells, &rec, &policy.reconciliation.unattributed, scale);
    let mut exceptions: Vec<Exception> = rec.exceptions.clone();
    exceptions.extend(bill_exceptions);

    // Every team in the logs, and every team of the policy (fixed fees
    // are due without usage).
    let empty: BTreeMap<String, TeamUsage> = policy
        .teams
        .keys()
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

    let issue_date = req.as_of.unwrap_or_else(|| period.end());
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
        let charges = charge(usage, &terms, scale);
        let budget = budget_status(
            charges.total,
            terms.budget,
            terms.alert_threshold,
            period,
            req.as_of,
            scale,
        );
        if budget.status == BudgetLevel::Critical {
            critical_budgets.push(usage.team.clone());
        }
        teams.push(TeamResult {
            terms,
            usage,
            charges,
            budget,
        });
    }
    for (source, n) in count_by_source(log.quarantine.iter().chain(&billing_quarantine)) {
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
    exceptions.extend(similar_team_ids(&policy, &attribution.teams));
    exceptions.sort();

    let other: Vec<&BilledLine> = lines.iter().filter(|l| !l.is_usage()).collect();
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
        })
        .collect();
    let duplicates = log.stats.duplicates;
    let (dup_rows, bad_rows): (Vec<&QuarantinedRow>, Vec<&QuarantinedRow>) = log
        .quarantine
        .iter()
        .partition(|q| q.kind == QuarantineKind::Duplicate);
    let inputs = InputCounts {
        request_rows: log.stats.rows_read,
        requests_used: log.stats.used,
        failed_requests: log.stats.errors,
        duplicates_dropped: duplicates,
        quarantined_requests: log.stats.quarantined,
        outside_period: log.stats.outside_period,
        failed_excluded: log.stats.failed_excluded,
        billing_rows,
        quarantined_billing_rows: billing_quarantine.len() as u64,
    };
    let month = build_month(MonthInput {
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
        inputs,
        exceptions: &exceptions,
        bill_sources: &bill_sources,
    });

    stage.done();
    let stage = ctx.progress.stage("render invoices (HTML, PDF)");
    let renderer = HtmlRenderer::new(ctx, policy.output.templates.as_deref())?;
    let pdf = PdfRenderer::new(ctx, policy.output.templates.as_deref());
    let mut outputs = Outputs::default();
    // Every document on the cores there are, added in the same order (and
    // the first error in that order) as one by one.
    stage.set_total(month.invoices.len() as u64 + 1);
    let done = stage.counter();
    let render = |inv: &crate::compute::invoice::Invoice| -> Result<(Vec<u8>, Vec<u8>)> {
        let view = month.invoice_view(inv);
        let html = renderer.invoice(&view)?.into_bytes();
        let doc = pdf.invoice(&view)?;
        done.inc(1);
        Ok((html, doc))
    };
    let render_summary = || -> Result<(Vec<u8>, Vec<u8>)> {
        let html = renderer.summary(&month)?.into_bytes();
        let doc = pdf.summary(&month)?;
        done.inc(1);
        Ok((html, doc))
    };
    // Typesetting recurses deeply: threads get a large stack.
    let (invoices, summary): (Vec<_>, _) =
        match rayon::ThreadPoolBuilder::new().stack_size(64 << 20).build() {
            Ok(pool) => pool.join(
                || month.invoices.par_iter().map(render).collect(),
                render_summary,
            ),
            Err(_) => (
                month.invoices.iter().map(render).collect(),
                render_summary(),
            ),
        };
    for (inv, rendered) in month.invoices.iter().zip(invoices) {
        let (html, doc) = rendered?;
        outputs.add(format!("invoices/{}.html", inv.file), html);
        outputs.add(format!("invoices/{}.pdf", inv.file), doc);
    }
    let (html, doc) = summary?;
    outputs.add("summary.html", html);
    outputs.add("summary.pdf", doc);
    outputs.add_json("invoices.json", &month);
    outputs.add_json(
        "budgets.json",
        &month
            .invoices
            .iter()
            .map(|i| (i.team.clone(), &i.budget))
            .collect::<BTreeMap<_, _>>(),
    );
    outputs.add("ledger.csv", ledger_csv(&month));
    outputs.add("reconciliation.csv", reconciliation_csv(&rec.rows, scale));
    outputs.add("exceptions.csv", exceptions_csv(&exceptions));
    if !bad_rows.is_empty() {
        outputs.add(
            "quarantine/requests.csv",
            quarantine_csv(bad_rows, &schema::request::ALL),
        );
    }
    if !dup_rows.is_empty() {
        outputs.add(
            "quarantine/duplicates.csv",
            quarantine_csv(dup_rows, &schema::request::ALL),
        );
    }
    if !billing_quarantine.is_empty() {
        outputs.add(
            "quarantine/billing.csv",
            quarantine_csv(
                billing_quarantine.iter().collect(),
                &schema::quarantine::BILL_FIELDS,
            ),
        );
    }

    stage.done();
    let stage = ctx.progress.stage("hash inputs for the manifest");
    let urls: Vec<&String> = request_sources
        .iter()
        .map(|s| &s.url)
        .chain(&billing_urls)
        .collect();
    let inputs = urls
        .par_iter()
        .map(|url| ctx.store.record(url))
        .collect::<Vec<Result<ObjectRecord>>>()
        .into_iter()
        .collect::<Result<Vec<ObjectRecord>>>()?;
    stage.done();
    let manifest = Manifest {
        tool: env!("CARGO_PKG_NAME").into(),
        version: env!("CARGO_PKG_VERSION").into(),
        period: period.to_string(),
        issue_date: issue_date.to_string(),
        policy: policy_record,
        catalog: catalog_record,
        inputs,
        outputs: outputs.records(),
        totals: Totals {
            currency: currency.clone(),
            billed_total: month.billed_total.clone(),
            estimated_total: month.estimated_total.clone(),
            attributed_total: month.attributed_total.clone(),
            unattributed: month.unattributed.clone(),
            charged_total: month.charged_total.clone(),
            other_billed_total: month.other_billed_total.clone(),
            invoices: month.invoices.len(),
            exceptions: exceptions.len(),
            quarantined_rows: month.inputs.quarantined_requests
                + month.inputs.quarantined_billing_rows,
            duplicates_dropped: duplicates,
        },
    };
    Ok(Closed {
        policy,
        month,
        outputs,
        manifest,
        critical_budgets,
    })
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

fn ledger_csv(month: &Month) -> Vec<u8> {
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
            ]
        })
    });
    csv_bytes(
        [
            "invoice_number",
            "team",
            "cost_center",
            "line",
            "kind",
            "provider",
            "model",
            "use_case",
            "tokens",
            "requests",
            "estimated",
            "rate",
            "amount",
            "currency",
        ],
        rows,
    )
}

fn reconciliation_csv(rows: &[crate::compute::reconcile::ReconRow], scale: u32) -> Vec<u8> {
    let d = |v: Decimal| format_amount(v, scale);
    let full = |v: Decimal| v.normalize().to_string();
    csv_bytes(
        [
            "provider",
            "day",
            "model",
            "billed_cost",
            "billed_tokens",
            "logged_tokens",
            "coverage",
            "attributed",
            "unattributed",
            "estimated",
            "catalog_cost",
            "price_variance",
        ],
        rows.iter().map(|r| {
            [
                r.provider.clone(),
                r.day.clone(),
                r.model.clone(),
                full(r.billed_cost),
                full(r.billed_tokens),
                full(r.logged_tokens),
                r.coverage()
                    .map(|c| c.round_dp(4).normalize().to_string())
                    .unwrap_or_default(),
                d(r.attributed),
                d(r.unattributed),
                d(r.estimated),
                r.catalog_cost
                    .map(|c| c.round_dp(6).normalize().to_string())
                    .unwrap_or_default(),
                r.price_variance()
                    .map(|v| v.round_dp(4).normalize().to_string())
                    .unwrap_or_default(),
            ]
        }),
    )
}

fn exceptions_csv(exceptions: &[Exception]) -> Vec<u8> {
    csv_bytes(
        [
            "kind", "provider", "day", "model", "team", "source", "detail",
        ],
        exceptions.iter().map(|e| {
            [
                e.kind.to_string(),
                e.provider.clone(),
                e.day.clone(),
                e.model.clone(),
                e.team.clone(),
                e.source.clone(),
                e.detail.clone(),
            ]
        }),
    )
}

/// Where each row came from and why, then the row's `fields` as read.
fn quarantine_csv(rows: Vec<&QuarantinedRow>, fields: &[&str]) -> Vec<u8> {
    let header: Vec<&str> = schema::quarantine::LOCATION
        .iter()
        .chain(fields)
        .copied()
        .collect();
    csv_bytes(
        header,
        rows.into_iter().map(|q| {
            [
                q.source.clone(),
                q.row.to_string(),
                q.column.clone(),
                q.reason.clone(),
            ]
            .into_iter()
            .chain(fields.iter().map(|f| q.field(f).to_string()))
            .collect::<Vec<_>>()
        }),
    )
}

//! Stage one: all the I/O a month needs — policy, catalog, listing,
//! request logs, bills, usage reports and what they quarantined — and
//! nothing else. What it returns, [`Inputs`], is all [`crate::compute`]
//! sees.

pub mod ingest;
pub mod notes;
pub mod store;

use chrono::NaiveDate;

use crate::catalog::Catalog;
use crate::config::BillingFormat;
use crate::config::Policy;
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::period::Period;
use ingest::outcomes::{OutcomeLog, OutcomeSource, load_outcomes};
use ingest::requests::{RequestLog, RequestSource, load_requests};
use ingest::{Bill, detect, load_bill};
use notes::{PendingNote, pending_notes};
use store::ObjectRecord;

/// A policy as read, with the record of the bytes it was read from.
pub struct LoadedPolicy {
    pub policy: Policy,
    pub record: ObjectRecord,
}

/// One bill object, as its format read it.
pub struct LoadedBill {
    pub url: String,
    pub format: BillingFormat,
    pub bill: Bill,
}

/// Everything a month is computed from.
pub struct Inputs {
    pub period: Period,
    pub catalog: Catalog,
    pub catalog_record: ObjectRecord,
    /// The request-log objects, sorted by URL.
    pub request_sources: Vec<RequestSource>,
    pub requests: RequestLog,
    /// The bills in the order the policy lists their sources.
    pub bills: Vec<LoadedBill>,
    /// The outcome objects (`[sources] outcomes`), sorted by URL.
    pub outcome_sources: Vec<OutcomeSource>,
    /// Outcomes other systems counted, for value-based charging.
    pub outcomes: OutcomeLog,
    /// What each request log, bill, outcome source and carried
    /// `notes.json` held, sorted by URL within each (request logs first,
    /// notes last), for the manifest.
    pub records: Vec<ObjectRecord>,
    /// Notes of earlier months this month's invoices carry.
    pub notes: Vec<PendingNote>,
}

/// Reads and checks the policy at `url`, then applies its `[storage]`
/// table (and a pinned manifest) to the store: every later read goes
/// through it.
pub fn read_policy(ctx: &Context, url: &str) -> Result<LoadedPolicy> {
    // The policy is named on the command line, not in [sources]: its own
    // hint when it is not there.
    if ctx.store.is_local_folder(url) {
        let file = crate::load::store::join(url, "chargeback.toml");
        return Err(
            Error::usage(format!("`--config {url}` is a folder, not a policy file")).with_hint(
                format!("name the policy file itself, such as `--config {file}`"),
            ),
        );
    }
    if !ctx.store.try_exists(url)? {
        return Err(Error::input(Location::file(url), "no such file")
            .with_hint("check the `--config` path"));
    }
    let text = ctx.store.read_text(url)?;
    let policy = Policy::parse(&text, url)?;
    ctx.store.configure(&policy.storage)?;
    let record = ctx.store.record(url)?;
    Ok(LoadedPolicy { policy, record })
}

/// Reads every input of `period` that `policy` names, and the notes of
/// earlier months due on the invoices of a run as of `as_of`.
pub fn load(
    ctx: &Context,
    policy: &Policy,
    period: Period,
    as_of: Option<NaiveDate>,
) -> Result<Inputs> {
    let stage = ctx.progress.stage("policy, catalog, inputs listed");
    let catalog_url = period.expand(&policy.sources.catalog);
    let catalog = Catalog::parse(&ctx.store.read_text(&catalog_url)?, &catalog_url)?;
    let catalog_record = ctx.store.record(&catalog_url)?;
    let currency = &policy.organization.currency;
    if catalog.currency != *currency {
        return Err(Error::policy(
            Location::file(&catalog_url),
            format!(
                "the catalog prices in `{}` but invoices are in `{currency}`",
                catalog.currency
            ),
        ));
    }

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
    let requests = load_requests(
        ctx,
        &request_sources,
        &policy.sources,
        &catalog,
        period,
        policy.reconciliation.failed_requests,
        &policy.engine,
    )?;

    let stage = ctx.progress.stage("bills");
    let fx = policy.fx_table();
    let mut bills = Vec::new();
    for spec in &policy.sources.billing {
        for url in ctx.store.list(&period.expand(&spec.url))? {
            let (format, bill) = load_bill(ctx, &url, spec, &catalog, period, &fx)?;
            bills.push(LoadedBill { url, format, bill });
        }
    }
    stage.done();

    let mut outcome_sources: Vec<OutcomeSource> = Vec::new();
    for spec in &policy.sources.outcomes {
        for url in ctx.store.list(&period.expand(spec.url()))? {
            outcome_sources.push(OutcomeSource {
                url,
                file_format: spec.file_format(),
            });
        }
    }
    outcome_sources.sort_by(|a, b| a.url.cmp(&b.url));
    outcome_sources.dedup_by(|a, b| a.url == b.url);
    let outcomes = if outcome_sources.is_empty() {
        OutcomeLog::default()
    } else {
        let stage = ctx.progress.stage("outcomes");
        let outcomes = load_outcomes(ctx, &outcome_sources, period)?;
        stage.done();
        outcomes
    };

    let stage = ctx.progress.stage("hash inputs for the manifest");
    let mut bill_urls: Vec<&String> = bills.iter().map(|b| &b.url).collect();
    bill_urls.sort();
    bill_urls.dedup();
    let urls: Vec<&String> = request_sources
        .iter()
        .map(|s| &s.url)
        .chain(bill_urls)
        .chain(outcome_sources.iter().map(|s| &s.url))
        .collect();
    let mut records = hash_all(ctx, &urls)?;
    stage.done();
    let issue_date = as_of.unwrap_or_else(|| period.end());
    let (notes, note_records) = pending_notes(ctx, &policy.output.url, period, issue_date)?;
    records.extend(note_records);
    Ok(Inputs {
        period,
        catalog,
        catalog_record,
        request_sources,
        requests,
        bills,
        outcome_sources,
        outcomes,
        records,
        notes,
    })
}

/// The records of `urls` on the cores there are, in order; the first error
/// in that order.
fn hash_all(ctx: &Context, urls: &[&String]) -> Result<Vec<ObjectRecord>> {
    use rayon::prelude::*;
    urls.par_iter()
        .map(|url| ctx.store.record(url))
        .collect::<Vec<Result<ObjectRecord>>>()
        .into_iter()
        .collect()
}

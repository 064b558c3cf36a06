//! `chargeback run`: close a month and publish it, in four stages —
//! load, compute, render, seal — and a publish.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::cli::{Gate, MonthArgs, RunArgs};
use crate::compute::{Month, compute};
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::load::store::join;
use crate::load::{load, read_policy};
use crate::money::{Decimal, format_amount};
use crate::period::Period;
use crate::progress::Progress;
use crate::publish::{PublishOptions, publish_with};
use crate::render::html::group_digits;
use crate::render::render;
use crate::render::templates::Templates;
use crate::seal::{Manifest, seal};
use crate::text::count;

pub fn run(ctx: &Context, args: &RunArgs) -> Result<()> {
    let (period, as_of) = parse_month(ctx, &args.month)?;
    let ctx = &ctx.with_progress(Progress::for_stderr(args.month.quiet, args.month.timings));
    if let Some(url) = &args.pin_manifest {
        ctx.store.pin_to_manifest(url);
    }
    let policy = read_policy(ctx, &args.month.config)?;
    let inputs = load(ctx, &policy.policy, period, as_of)?;
    let templates = Templates::load(ctx, policy.policy.output.templates.as_deref())?;

    let stage = ctx.progress.stage("reconcile, attribute, charge back");
    let month = compute(&inputs, &policy.policy, as_of)?;
    stage.done();

    let outputs = render(&month, &templates, &ctx.progress)?;
    let manifest = seal(&policy, &inputs, &month, &outputs);

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| period.expand(&policy.policy.output.url));
    if let Some(url) = &args.pin_manifest {
        check_pinned_inputs(ctx, url, &manifest)?;
    }
    let stage = ctx.progress.stage("publish");
    publish_with(
        ctx,
        &out,
        &outputs,
        &manifest,
        PublishOptions { force: args.force },
    )?;
    stage.done();
    ctx.progress.finish();
    let m = &month.view;
    let mut tripped = Vec::new();
    if args.fail_on.contains(&Gate::Exceptions) && m.exception_total > 0 {
        tripped.push(format!(
            "{} reconciliation exceptions (see `{}`)",
            m.exception_total,
            join(&out, "exceptions.csv")
        ));
    }
    if args.fail_on.contains(&Gate::Budget) && !month.critical_budgets.is_empty() {
        tripped.push(format!(
            "over budget: {}",
            month
                .critical_budgets
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if args.json {
        super::say(&super::summary::month("run", &month, Some(&out), &tripped));
    } else if !args.month.quiet {
        super::say(&report(&month, &format!("closed {period} → {out}")));
    }
    if tripped.is_empty() {
        Ok(())
    } else {
        Err(Error::Gate {
            message: format!("--fail-on tripped after publishing: {}", tripped.join("; ")),
        })
    }
}

/// A pinned rerun reads exactly the objects the pinned manifest records:
/// none missing, none added (each one's bytes were checked on reading).
fn check_pinned_inputs(ctx: &Context, url: &str, manifest: &Manifest) -> Result<()> {
    if !ctx.store.pins_loaded() {
        return Err(Error::usage(format!(
            "`--pin-manifest {url}` was not applied"
        )));
    }
    let pinned: BTreeSet<String> = ctx.store.pinned().into_iter().map(|r| r.url).collect();
    let read: BTreeSet<String> = manifest
        .inputs
        .iter()
        .map(|i| &i.object)
        .chain([&manifest.catalog])
        .map(|r| r.url.clone())
        .collect();
    let hint = "the policy's [sources] or `--period` differ from the pinned run's";
    if let Some(missing) = pinned.difference(&read).next() {
        return Err(Error::input(
            Location::file(url),
            format!("the pinned manifest lists `{missing}`, which this run did not read"),
        )
        .with_hint(hint));
    }
    if let Some(extra) = read.difference(&pinned).next() {
        return Err(Error::input(
            Location::file(url),
            format!("this run read `{extra}`, which the pinned manifest does not list"),
        )
        .with_hint(hint));
    }
    Ok(())
}

/// The period and as-of date of a month command; a bad one is a usage
/// error. `previous` is the month before `--as-of`'s, or before today's
/// (UTC) without it — a scheduled job's month.
pub fn parse_month(ctx: &Context, args: &MonthArgs) -> Result<(Period, Option<NaiveDate>)> {
    let as_of = match &args.as_of {
        None => None,
        Some(s) => Some(s.parse::<NaiveDate>().map_err(|_| {
            Error::usage(format!("`--as-of {s}` is not a date")).with_hint("write it as YYYY-MM-DD")
        })?),
    };
    let period = if args.period == PREVIOUS {
        Period::of(as_of.unwrap_or_else(|| ctx.today())).previous()
    } else {
        args.period.parse().map_err(|e| {
            Error::usage(e).with_hint(format!(
                "or `--period {PREVIOUS}` for the month before today (UTC)"
            ))
        })?
    };
    Ok((period, as_of))
}

/// The `--period` of a scheduled job: the month before.
const PREVIOUS: &str = "previous";

/// The few lines a person or a CI log reads after a run.
pub fn report(month: &Month<'_>, headline: &str) -> String {
    let m = &month.view;
    let cur = &m.currency;
    let rows = [
        ("billed", &m.billed_total),
        ("estimated", &m.estimated_total),
        ("attributed", &m.attributed_total),
        ("unattributed", &m.unattributed),
        ("charged", &m.charged_total),
    ];
    let width = rows
        .iter()
        .map(|r| group_digits(r.1).len())
        .max()
        .unwrap_or(0);
    let mut s = format!("{headline}\n");
    for (label, v) in rows {
        s.push_str(&format!("  {label:<13}{:>width$} {cur}\n", group_digits(v)));
    }
    s.push_str(&format!(
        "  {} · {} · {} quarantined · {} dropped\n",
        count(m.invoices.len() as u64, "invoice", "invoices"),
        count(m.exception_total as u64, "exception", "exceptions"),
        count(
            m.inputs.quarantined_requests
                + m.inputs.quarantined_billing_rows
                + m.inputs.quarantined_outcome_rows,
            "row",
            "rows"
        ),
        count(
            m.inputs.duplicates_dropped,
            "duplicate request",
            "duplicate requests"
        ),
    ));
    if !month.carried.is_empty() {
        let net: Decimal = month.carried.iter().map(|n| n.amount).sum();
        let mut periods: Vec<&str> = month.carried.iter().map(|n| n.period.as_str()).collect();
        periods.dedup();
        s.push_str(&format!(
            "  carried: {} of {} as adjustment lines, net {} {cur}\n",
            count(
                month.carried.len() as u64,
                "credit or debit note",
                "credit and debit notes"
            ),
            periods.join(", "),
            group_digits(&format_amount(net, month.scale)),
        ));
    }
    if m.other_services_rows > 0 {
        s.push_str(&format!(
            "  not LLM spend: {}, {} {cur} of other cloud services, not included\n",
            count(m.other_services_rows, "bill row", "bill rows"),
            group_digits(&m.other_services_total),
        ));
    }
    s.push_str(&format!(
        "  ties to the bill: {}\n",
        if m.ties_to_bill { "yes" } else { "NO" }
    ));
    for why in &m.tie_breaks {
        s.push_str(&format!("    - {why}\n"));
    }
    if !m.top_exceptions.is_empty() {
        s.push_str("  exceptions, most severe first:\n");
        for e in m.top_exceptions.iter().take(REPORTED_EXCEPTIONS) {
            let at = if e.at.is_empty() {
                String::new()
            } else {
                format!(" [{}]", e.at)
            };
            s.push_str(&format!("    - {}{at}: {}\n", e.label, e.detail));
        }
        let more = m.exception_total.saturating_sub(REPORTED_EXCEPTIONS);
        if more > 0 {
            s.push_str(&format!("    … and {more} more in exceptions.csv\n"));
        }
    }
    s
}

/// How many exceptions the run's report spells out.
const REPORTED_EXCEPTIONS: usize = 5;

/// What `validate` says of a month: clean only when it ties to the bills
/// and finance has nothing to look at.
pub fn verdict(month: &Month<'_>, period: Period) -> String {
    let m = &month.view;
    match Standing::of(month) {
        Standing::DoesNotTie => {
            format!("checked: {period} does NOT tie to the provider's bills (nothing was written)")
        }
        Standing::Review => format!(
            "checked: {period} ties to the bills, with {} to review (nothing was written)",
            count(m.exception_total as u64, "exception", "exceptions")
        ),
        Standing::Valid => format!("valid: {period} closes cleanly (nothing was written)"),
    }
}

/// Where a checked month stands: what `validate` says in words and
/// `--json` as `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    DoesNotTie,
    Review,
    Valid,
}

impl Standing {
    pub fn of(month: &Month<'_>) -> Standing {
        let m = &month.view;
        if !m.ties_to_bill {
            Standing::DoesNotTie
        } else if m.exception_total > 0 {
            Standing::Review
        } else {
            Standing::Valid
        }
    }

    /// The `status` of the `--json` summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::DoesNotTie => "does_not_tie",
            Standing::Review => "review",
            Standing::Valid => "valid",
        }
    }
}

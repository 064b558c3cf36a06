//! `chargeback run`: close a month and publish it.

use chrono::NaiveDate;

use super::close::{Closed, MonthRequest, close_month};
use crate::cli::{Gate, MonthArgs, RunArgs};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::period::Period;
use crate::publish::publish;
use crate::render::html::group_digits;
use crate::store::join;

pub fn run(ctx: &Context, args: &RunArgs) -> Result<()> {
    let (period, as_of) = parse_month(&args.month)?;
    let closed = close_month(
        ctx,
        &MonthRequest {
            config: &args.month.config,
            period,
            as_of,
        },
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| period.expand(&closed.policy.output.url));
    publish(ctx, &out, &closed.outputs, &closed.manifest)?;
    if !args.month.quiet {
        print!("{}", report(&closed, &format!("closed {period} → {out}")));
    }
    let m = &closed.month;
    let mut tripped = Vec::new();
    if args.fail_on.contains(&Gate::Exceptions) && m.exception_total > 0 {
        tripped.push(format!(
            "{} reconciliation exceptions (see `{}`)",
            m.exception_total,
            join(&out, "exceptions.csv")
        ));
    }
    if args.fail_on.contains(&Gate::Budget) && !closed.critical_budgets.is_empty() {
        tripped.push(format!(
            "over budget: {}",
            closed
                .critical_budgets
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if tripped.is_empty() {
        Ok(())
    } else {
        Err(Error::Gate {
            message: format!("--fail-on tripped after publishing: {}", tripped.join("; ")),
        })
    }
}

/// The period and as-of date of a month command; a bad one is a usage error.
pub fn parse_month(args: &MonthArgs) -> Result<(Period, Option<NaiveDate>)> {
    let period: Period = args.period.parse().map_err(Error::usage)?;
    let as_of = match &args.as_of {
        None => None,
        Some(s) => Some(s.parse::<NaiveDate>().map_err(|_| {
            Error::usage(format!("`--as-of {s}` is not a date")).with_hint("write it as YYYY-MM-DD")
        })?),
    };
    Ok((period, as_of))
}

/// The few lines a person or a CI log reads after a run.
pub fn report(closed: &Closed, headline: &str) -> String {
    let m = &closed.month;
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
        "  {} invoices · {} exceptions · {} rows quarantined · {} duplicate requests dropped\n",
        m.invoices.len(),
        m.exception_total,
        m.inputs.quarantined_requests + m.inputs.quarantined_billing_rows,
        m.inputs.duplicates_dropped
    ));
    s.push_str(&format!(
        "  ties to the bill: {}\n",
        if m.ties_to_bill { "yes" } else { "NO" }
    ));
    s
}

//! The `--json` summary of `run` and `validate`: what the human report
//! says, as one object on stdout for a scheduled job to parse. Money is
//! decimal strings, as in `invoices.json`; keys keep this order.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compute::Month;
use crate::compute::budget::BudgetLevel;
use crate::compute::invoice::{ExceptionView, InputCounts};
use crate::error::{Error, exit};

#[derive(Debug, Serialize)]
struct Summary<'a> {
    command: &'a str,
    period: &'a str,
    /// The date the run speaks for (the invoices' issue date).
    as_of: &'a str,
    exit_code: i32,
    exit_reason: &'static str,
    /// `closed`, or for `validate`: `valid`, `review` (ties, with
    /// exceptions) or `does_not_tie`.
    status: &'static str,
    /// Where `run` published the month.
    #[serde(skip_serializing_if = "Option::is_none")]
    published_to: Option<&'a str>,
    currency: &'a str,
    totals: Totals<'a>,
    ties_to_bill: bool,
    tie_breaks: &'a [String],
    invoices: usize,
    inputs: &'a InputCounts,
    exceptions: usize,
    exceptions_by_kind: BTreeMap<&'a str, usize>,
    top_exceptions: &'a [ExceptionView],
    budget_alerts: Vec<BudgetAlert<'a>>,
    /// The `--fail-on` gates that tripped, in words.
    gates_tripped: &'a [String],
}

#[derive(Debug, Serialize)]
struct Totals<'a> {
    billed: &'a str,
    estimated: &'a str,
    attributed: &'a str,
    unattributed: &'a str,
    charged: &'a str,
}

/// A team whose spend is near or above its budget.
#[derive(Debug, Serialize)]
struct BudgetAlert<'a> {
    team: &'a str,
    status: &'a str,
    budget: Option<&'a str>,
    spent: &'a str,
    /// Month-end spend: what was spent once the month is closed, else a
    /// projection (`basis` says which).
    projected: &'a str,
    basis: &'a str,
}

/// The summary of a computed month: `published_to` for `run`, the gates
/// that tripped (exit 4) or none (exit 0).
pub fn month(
    command: &str,
    month: &Month<'_>,
    published_to: Option<&str>,
    gates_tripped: &[String],
) -> String {
    let m = &month.view;
    let status = if published_to.is_some() {
        "closed"
    } else {
        super::run::Standing::of(month).as_str()
    };
    let (exit_code, exit_reason) = if gates_tripped.is_empty() {
        (exit::OK, reason(exit::OK))
    } else {
        (exit::GATE, reason(exit::GATE))
    };
    let summary = Summary {
        command,
        period: &m.period,
        as_of: &m.issue_date,
        exit_code,
        exit_reason,
        status,
        published_to,
        currency: &m.currency,
        totals: Totals {
            billed: &m.billed_total,
            estimated: &m.estimated_total,
            attributed: &m.attributed_total,
            unattributed: &m.unattributed,
            charged: &m.charged_total,
        },
        ties_to_bill: m.ties_to_bill,
        tie_breaks: &m.tie_breaks,
        invoices: m.invoices.len(),
        inputs: &m.inputs,
        exceptions: m.exception_total,
        exceptions_by_kind: m
            .exceptions
            .iter()
            .map(|e| (e.kind.as_str(), e.count))
            .collect(),
        top_exceptions: &m.top_exceptions,
        budget_alerts: m
            .invoices
            .iter()
            .filter(|i| {
                [BudgetLevel::Warning, BudgetLevel::Critical]
                    .iter()
                    .any(|l| l.as_str() == i.budget.status)
            })
            .map(|i| BudgetAlert {
                team: &i.team,
                status: &i.budget.status,
                budget: i.budget.budget.as_deref(),
                spent: &i.budget.spent,
                projected: &i.budget.projected,
                basis: &i.budget.basis,
            })
            .collect(),
        gates_tripped,
    };
    line(&summary)
}

#[derive(Debug, Serialize)]
struct Failure<'a> {
    command: &'a str,
    exit_code: i32,
    exit_reason: &'static str,
    error: ErrorView<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorView<'a> {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

/// The summary of a run that stopped with `error` (printed on stderr too).
pub fn failure(command: &str, error: &Error) -> String {
    let code = error.exit_code();
    line(&Failure {
        command,
        exit_code: code,
        exit_reason: reason(code),
        error: ErrorView {
            message: error.to_string(),
            hint: error.hint(),
        },
    })
}

/// The summary of a run that stopped on a bug (a panic).
pub fn internal(command: &str, message: &str) -> String {
    line(&Failure {
        command,
        exit_code: exit::BAD_INPUT,
        exit_reason: "internal error (nothing published)",
        error: ErrorView {
            message: format!("internal error: {message}"),
            hint: None,
        },
    })
}

/// What an exit code means, as `--help` says it.
fn reason(code: i32) -> &'static str {
    match code {
        exit::OK => "ok",
        exit::BAD_INPUT => "bad input or policy (nothing published)",
        exit::USAGE => "usage",
        exit::STORAGE => "storage",
        _ => "a --fail-on gate tripped (outputs published)",
    }
}

fn line(value: &impl Serialize) -> String {
    let mut s = serde_json::to_string(value).expect("a summary serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    #[test]
    fn a_failure_names_its_code_message_and_hint() {
        let e = Error::input(
            Location::cell("b.csv", 3, "BilledCost"),
            "`x` is not a number",
        )
        .with_hint("write a decimal");
        assert_eq!(
            failure("run", &e),
            "{\"command\":\"run\",\"exit_code\":1,\"exit_reason\":\"bad input or policy (nothing published)\",\
             \"error\":{\"message\":\"b.csv:3:BilledCost: `x` is not a number\",\"hint\":\"write a decimal\"}}\n"
        );
        assert!(
            failure("validate", &Error::storage("s3://b", "denied")).contains("\"exit_code\":3")
        );
    }
}

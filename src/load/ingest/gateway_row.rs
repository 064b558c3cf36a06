//! The canonical request row the gateway adapters (LiteLLM,
//! OpenTelemetry) build: every value as text, in file order, for
//! `requests::normalize` to check; and the small readers they share.

use polars::prelude::*;
use serde_json::Value;

use crate::error::{Error, Location};
use crate::schema::request::*;

/// A JSON parse error as the input error the gateway adapters give.
pub(crate) fn not_json(url: &str, e: &serde_json::Error) -> Error {
    let text = e.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    Error::input(
        Location {
            uri: url.to_string(),
            row: Some(e.line() as u64),
            column: Some(e.column().to_string()),
        },
        format!("not valid JSON: {message}"),
    )
}

/// `a`, `b` and 3 more.
pub(crate) fn backticked<'a>(names: impl Iterator<Item = &'a str>, max: usize) -> String {
    let names: Vec<&str> = names.collect();
    let shown: Vec<String> = names.iter().take(max).map(|n| format!("`{n}`")).collect();
    let more = names.len().saturating_sub(max);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A value as the text the canonical checks read.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A token count as found: a whole number we can subtract with, or text
/// passed on as it is, for the canonical checks to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Count {
    Absent,
    Int(i128),
    Raw(String),
}

impl Count {
    pub(crate) fn of(v: Option<&Value>) -> Count {
        match v {
            None | Some(Value::Null) => Count::Absent,
            Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Count::Int(i128::from(u)),
                (_, Some(i)) => Count::Int(i128::from(i)),
                _ => Count::Raw(n.to_string()),
            },
            Some(Value::String(s)) => {
                let t = s.trim();
                let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
                if t.is_empty() {
                    Count::Absent
                } else if !digits.is_empty()
                    && digits.len() <= 30
                    && digits.bytes().all(|b| b.is_ascii_digit())
                {
                    t.parse().map_or_else(|_| Count::Raw(s.clone()), Count::Int)
                } else {
                    Count::Raw(s.clone())
                }
            }
            Some(other) => Count::Raw(other.to_string()),
        }
    }

    /// A count fit to subtract: absent is 0; text or a negative is not.
    pub(crate) fn known(&self) -> Option<i128> {
        match self {
            Count::Absent => Some(0),
            Count::Int(i) if *i >= 0 => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Count::Absent => None,
            Count::Int(i) => Some(i.to_string()),
            Count::Raw(s) => Some(s.clone()),
        }
    }
}

/// One request in canonical form, every value as text (`None`: absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CanonicalRow {
    pub request_id: Option<String>,
    pub timestamp: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub billing_scope: Option<String>,
    pub team: Option<String>,
    pub use_case: Option<String>,
    pub input_tokens: Option<String>,
    pub cached_input_tokens: Option<String>,
    pub cache_write_tokens: Option<String>,
    pub output_tokens: Option<String>,
    pub status: Option<String>,
    pub outcome: Option<String>,
    pub outcome_count: Option<String>,
    pub user: Option<String>,
    pub tokens_estimated: Option<String>,
    pub conversation_id: Option<String>,
    /// The line of the file the row comes from, when rows are not lines
    /// one for one (spans skipped, many spans on a line).
    pub line: Option<u64>,
}

/// A text field of a row.
type Field = fn(&CanonicalRow) -> &Option<String>;

/// The column holding [`CanonicalRow::line`], when a source has one.
pub(crate) const SOURCE_LINE: &str = "__line";

/// Canonical rows in file order, gathered into a frame of text columns.
/// Shared by the gateway adapters (LiteLLM, OpenTelemetry).
#[derive(Debug, Default)]
pub(crate) struct CanonicalRows {
    rows: Vec<CanonicalRow>,
}

impl CanonicalRows {
    pub(crate) fn push(&mut self, row: CanonicalRow) {
        self.rows.push(row);
    }

    pub(crate) fn into_frame(self) -> DataFrame {
        let rows = self.rows;
        let column = |name: &str, f: fn(&CanonicalRow) -> &Option<String>| {
            let values: Vec<Option<String>> = rows.iter().map(|r| f(r).clone()).collect();
            Column::new(name.into(), values)
        };
        let mut frame = DataFrame::new(
            rows.len(),
            vec![
                column(REQUEST_ID, |r| &r.request_id),
                column(TIMESTAMP, |r| &r.timestamp),
                column(PROVIDER, |r| &r.provider),
                column(MODEL, |r| &r.model),
                column(BILLING_SCOPE, |r| &r.billing_scope),
                column(TEAM, |r| &r.team),
                column(USE_CASE, |r| &r.use_case),
                column(INPUT_TOKENS, |r| &r.input_tokens),
                column(CACHED_INPUT_TOKENS, |r| &r.cached_input_tokens),
                column(CACHE_WRITE_TOKENS, |r| &r.cache_write_tokens),
                column(OUTPUT_TOKENS, |r| &r.output_tokens),
                column(STATUS, |r| &r.status),
                column(OUTCOME, |r| &r.outcome),
                column(OUTCOME_COUNT, |r| &r.outcome_count),
                column(USER, |r| &r.user),
            ],
        )
        .expect("columns of equal length");
        // The insight columns only when some row has a value: a log
        // without them reads as one whose files lack them.
        let insight: [(&str, Field); 2] = [
            (TOKENS_ESTIMATED, |r| &r.tokens_estimated),
            (CONVERSATION_ID, |r| &r.conversation_id),
        ];
        for (name, f) in insight {
            if rows.iter().any(|r| f(r).is_some()) {
                frame
                    .with_column(column(name, f))
                    .expect("a column of the frame's height");
            }
        }
        if rows.iter().any(|r| r.line.is_some()) {
            let lines: Vec<Option<u64>> = rows.iter().map(|r| r.line).collect();
            frame
                .with_column(Column::new(SOURCE_LINE.into(), lines))
                .expect("a column of the frame's height");
        }
        frame
    }
}

//! What every bill adapter shares: what a quarantined bill row keeps of
//! itself.

use super::QuarantinedRow;
use crate::schema::quarantine;

/// A quarantined API result or CSV row, kept whole: `record` is the
/// result as parsed (or the CSV row's cells by column), `cost` its amount
/// as written.
pub(super) fn quarantined(
    url: &str,
    row: u64,
    column: &str,
    reason: String,
    cost: Option<&str>,
    record: &impl serde::Serialize,
) -> QuarantinedRow {
    let record = serde_json::to_string(record).unwrap_or_default();
    QuarantinedRow::invalid(url, row, column, reason).with_fields(vec![
        (quarantine::COST, cost.unwrap_or_default().to_string()),
        (quarantine::RECORD, record),
    ])
}

/// What a quarantined bill row keeps of itself: its amount as written and
/// its fields as one JSON object (absent fields left out).
pub(crate) fn bill_fields<'a>(
    cost: Option<&str>,
    record: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<(&'static str, String)> {
    let map: serde_json::Map<String, serde_json::Value> = record
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), serde_json::Value::from(v))))
        .collect();
    vec![
        (quarantine::COST, cost.unwrap_or_default().to_string()),
        (
            quarantine::RECORD,
            serde_json::Value::Object(map).to_string(),
        ),
    ]
}

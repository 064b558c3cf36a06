//! Provider CSV exports read whole, by column name: the dashboard and
//! console cost CSVs. Polars is not used here: these files are small and
//! their cells are read as text by our rules.

use super::is_null_text;
use crate::error::{Error, Location, Result};

/// A CSV export read whole: header names trimmed, cells by name, blank
/// cells absent. Rows count data records from 1.
pub(super) struct CsvTable {
    header: Vec<String>,
    records: Vec<(u64, csv::StringRecord)>,
}

impl CsvTable {
    pub(super) fn read(url: &str, text: &str, what: &str, expected: &str) -> Result<CsvTable> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let bad = |e: csv::Error| {
            let row = e.position().map(csv::Position::record);
            Error::input(
                Location {
                    uri: url.to_string(),
                    row,
                    column: None,
                },
                format!("cannot read {what}: {e}"),
            )
            .with_hint(format!("expected a CSV file with the header `{expected}`"))
        };
        let header: Vec<String> = reader
            .headers()
            .map_err(bad)?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut records = Vec::new();
        for (i, r) in reader.records().enumerate() {
            let r = r.map_err(bad)?;
            records.push(((i + 1) as u64, r));
        }
        Ok(CsvTable { header, records })
    }

    pub(super) fn has(&self, column: &str) -> bool {
        self.header.iter().any(|h| h == column)
    }

    pub(super) fn has_all(&self, columns: &[&str]) -> bool {
        columns.iter().all(|c| self.has(c))
    }

    pub(super) fn rows(&self) -> impl Iterator<Item = (u64, &csv::StringRecord)> {
        self.records.iter().map(|(n, r)| (*n, r))
    }

    /// A cell by column name; null cells ([`is_null_text`]) and missing
    /// columns are `None`.
    pub(super) fn get<'r>(&self, record: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        let i = self.header.iter().position(|h| h == column)?;
        record.get(i).map(str::trim).filter(|s| !is_null_text(s))
    }

    /// A row's cells by column, as written: what a quarantine keeps.
    pub(super) fn record(
        &self,
        record: &csv::StringRecord,
    ) -> serde_json::Map<String, serde_json::Value> {
        self.header
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.clone(), serde_json::Value::from(v)))
            .collect()
    }

    /// The error for a file whose header is not the expected one.
    pub(super) fn not_this_shape(
        &self,
        url: &str,
        message: &str,
        required: &[&str],
        expected: &str,
    ) -> Error {
        let missing: Vec<String> = required
            .iter()
            .filter(|c| !self.has(c))
            .map(|c| format!("`{c}`"))
            .collect();
        let found: Vec<String> = self.header.iter().map(|h| format!("`{h}`")).collect();
        Error::input(
            Location::file(url),
            format!(
                "{message}: missing {}; found {}",
                missing.join(", "),
                if found.is_empty() {
                    "no columns".to_string()
                } else {
                    found.join(", ")
                }
            ),
        )
        .with_hint(format!(
            "expected the header `{expected}`, or set `format` in the policy"
        ))
    }
}

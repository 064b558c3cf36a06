//! Rows set aside: why, and the row as read, so that it can be fixed and
//! replayed; and the CSV a quarantine file is written as.

use serde::Serialize;

use crate::schema;

/// Why a row was set aside: which quarantine file it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineKind {
    /// A later request row with a `request_id` already seen (dropped).
    Duplicate,
    /// A row that failed a check.
    Invalid,
}

/// A row set aside, with why, and the row itself as read: so that it can
/// be fixed and replayed when its source object is gone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct QuarantinedRow {
    pub source: String,
    pub row: u64,
    pub column: String,
    pub reason: String,
    pub kind: QuarantineKind,
    /// The row's fields as text, by name: the canonical request columns for
    /// request logs; for bills `cost` (the amount as written, when the row
    /// has one) and `record` (the whole row as JSON).
    pub fields: Vec<(&'static str, String)>,
}

impl QuarantinedRow {
    /// A row that failed a check.
    pub fn invalid(source: &str, row: u64, column: &str, reason: String) -> QuarantinedRow {
        QuarantinedRow {
            source: source.to_string(),
            row,
            column: column.to_string(),
            reason,
            kind: QuarantineKind::Invalid,
            fields: Vec::new(),
        }
    }

    pub fn with_fields(mut self, fields: Vec<(&'static str, String)>) -> QuarantinedRow {
        self.fields = fields;
        self
    }

    /// The field `name` as read, or empty.
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A quarantine file: where each row was and why it was set aside
/// ([`schema::quarantine::LOCATION`]), then `fields` of the row as read.
pub fn quarantine_csv(rows: &[&QuarantinedRow], fields: &[&str]) -> Vec<u8> {
    let header: Vec<&str> = schema::quarantine::LOCATION
        .iter()
        .chain(fields)
        .copied()
        .collect();
    crate::table::csv_bytes(
        header,
        rows.iter().map(|q| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarantine_file_locates_each_row_then_keeps_its_fields() {
        let bad = QuarantinedRow::invalid(
            "memory://bill.csv",
            7,
            "cost",
            "`cost`: not a number".into(),
        )
        .with_fields(vec![
            (schema::quarantine::COST, "1,5".into()),
            (schema::quarantine::RECORD, r#"{"cost":"1,5"}"#.into()),
        ]);
        let bare = QuarantinedRow::invalid("memory://bill.csv", 9, "day", "missing `day`".into());
        let csv = quarantine_csv(&[&bad, &bare], &schema::quarantine::BILL_FIELDS);
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "source,row,column,reason,cost,record\n\
             memory://bill.csv,7,cost,`cost`: not a number,\"1,5\",\"{\"\"cost\"\":\"\"1,5\"\"}\"\n\
             memory://bill.csv,9,day,missing `day`,,\n"
        );
    }
}

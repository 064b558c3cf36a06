//! Stage four: `manifest.json`, what a run read and wrote, with hashes, so
//! an auditor can check a historic month byte for byte. One type, written
//! by a run and read back by the next (publishing over a month, pinning a
//! rerun to it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compute::Month;
use crate::error::{Error, Location, Result};
use crate::load::ingest::QuarantineKind;
use crate::load::store::ObjectRecord;
use crate::load::{Inputs, LoadedPolicy};
use crate::publish::Outputs;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub currency: String,
    pub billed_total: String,
    pub estimated_total: String,
    pub attributed_total: String,
    pub unattributed: String,
    pub charged_total: String,
    pub other_billed_total: String,
    pub invoices: usize,
    pub exceptions: usize,
    pub quarantined_rows: u64,
    pub duplicates_dropped: u64,
}

/// An input object as read, and what became of its rows. The counts are
/// absent from manifests written before they were recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    #[serde(flatten)]
    pub object: ObjectRecord,
    /// Rows (requests, bill rows) the object held.
    #[serde(default)]
    pub rows_read: u64,
    /// Rows set aside in `quarantine/` for failing a check.
    #[serde(default)]
    pub rows_quarantined: u64,
    /// Request rows dropped as repeats of an earlier request id.
    #[serde(default)]
    pub rows_duplicated: u64,
}

/// An amendment of the month: its number, its manifest, and its notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmendmentRecord {
    pub number: u32,
    pub issue_date: String,
    /// `amendments/<n>/manifest.json`, relative to the month's folder.
    pub manifest: String,
    pub sha256: String,
    pub notes: Vec<String>,
}

/// A credit or debit note of an earlier month that this month's invoices
/// carry as an adjustment line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedNote {
    pub note_number: String,
    pub team: String,
    pub amount: String,
    /// The `notes.json` it was read from.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub period: String,
    pub issue_date: String,
    /// The `--as-of` date the run was given (`None`: the close of the period).
    #[serde(default)]
    pub as_of: Option<String>,
    /// Set in the manifest of `amendments/<n>/`: the amendment's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amendment: Option<u32>,
    /// Set for an amendment: the reason printed on its notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub policy: ObjectRecord,
    pub catalog: ObjectRecord,
    pub inputs: Vec<InputRecord>,
    pub outputs: Vec<OutputRecord>,
    pub totals: Totals,
    /// Notes of earlier months carried as adjustment lines.
    #[serde(default)]
    pub carried_notes: Vec<CarriedNote>,
    /// Whether `chargeback amend` has issued notes against this month.
    #[serde(default)]
    pub amended: bool,
    #[serde(default)]
    pub amendments: Vec<AmendmentRecord>,
    /// The cluster that ran the request logs' heavy stage (`[engine]`);
    /// absent when this process ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::load::ingest::requests::EngineRecord>,
}

impl Manifest {
    /// The bytes of `manifest.json`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        bytes.push(b'\n');
        bytes
    }

    /// A manifest as published at `url`.
    pub fn parse(bytes: &[u8], url: &str) -> Result<Manifest> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::input(Location::file(url), format!("not a manifest: {e}"))
                .with_hint("give `--pin-manifest` the manifest.json of a published month")
        })
    }
}

/// The manifest of a run: the policy, catalog and inputs `inputs` recorded
/// as read, every output as rendered, and the month's totals.
pub fn seal(
    policy: &LoadedPolicy,
    inputs: &Inputs,
    month: &Month<'_>,
    outputs: &Outputs,
) -> Manifest {
    let m = &month.view;
    Manifest {
        tool: env!("CARGO_PKG_NAME").into(),
        version: env!("CARGO_PKG_VERSION").into(),
        period: m.period.clone(),
        issue_date: m.issue_date.clone(),
        as_of: month.as_of.map(|d| d.to_string()),
        amendment: None,
        reason: None,
        policy: policy.record.clone(),
        catalog: inputs.catalog_record.clone(),
        inputs: input_records(inputs),
        outputs: outputs.records(),
        carried_notes: inputs
            .notes
            .iter()
            .map(|n| CarriedNote {
                note_number: n.note_number.clone(),
                team: n.team.clone(),
                amount: n.amount.to_string(),
                source: n.source.clone(),
            })
            .collect(),
        amended: false,
        amendments: Vec::new(),
        engine: inputs.requests.engine.clone(),
        totals: Totals {
            currency: m.currency.clone(),
            billed_total: m.billed_total.clone(),
            estimated_total: m.estimated_total.clone(),
            attributed_total: m.attributed_total.clone(),
            unattributed: m.unattributed.clone(),
            charged_total: m.charged_total.clone(),
            other_billed_total: m.other_billed_total.clone(),
            invoices: m.invoices.len(),
            exceptions: month.exceptions.len(),
            quarantined_rows: m.inputs.quarantined_requests + m.inputs.quarantined_billing_rows,
            duplicates_dropped: m.inputs.duplicates_dropped,
        },
    }
}

/// Each input's record with the rows it held, quarantined and duplicated.
fn input_records(inputs: &Inputs) -> Vec<InputRecord> {
    #[derive(Default)]
    struct Rows {
        read: u64,
        quarantined: u64,
        duplicated: u64,
    }
    let mut rows: BTreeMap<&str, Rows> = BTreeMap::new();
    let log = &inputs.requests;
    for (s, n) in inputs.request_sources.iter().zip(&log.rows_by_source) {
        rows.entry(&s.url).or_default().read += n;
    }
    for q in &log.quarantine {
        let r = rows.entry(&q.source).or_default();
        match q.kind {
            QuarantineKind::Duplicate => r.duplicated += 1,
            QuarantineKind::Invalid => r.quarantined += 1,
        }
    }
    for b in &inputs.bills {
        let r = rows.entry(&b.url).or_default();
        r.read += b.bill.rows_read;
        r.quarantined += b.bill.quarantine.len() as u64;
    }
    inputs
        .records
        .iter()
        .map(|o| {
            let r = rows.get(o.url.as_str());
            InputRecord {
                object: o.clone(),
                rows_read: r.map_or(0, |r| r.read),
                rows_quarantined: r.map_or(0, |r| r.quarantined),
                rows_duplicated: r.map_or(0, |r| r.duplicated),
            }
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_written() {
        let record = |url: &str| ObjectRecord {
            url: url.into(),
            size: 3,
            etag: None,
            version: Some("v1".into()),
            sha256: sha256_hex(b"abc"),
        };
        let m = Manifest {
            tool: "chargeback".into(),
            version: "0".into(),
            period: "2025-01".into(),
            issue_date: "2025-02-01".into(),
            as_of: None,
            amendment: None,
            reason: None,
            policy: record("policy.toml"),
            catalog: record("catalog.json"),
            inputs: vec![InputRecord {
                object: record("logs/a.csv"),
                rows_read: 3,
                rows_quarantined: 1,
                rows_duplicated: 0,
            }],
            carried_notes: Vec::new(),
            amended: false,
            amendments: Vec::new(),
            engine: None,
            outputs: vec![OutputRecord {
                path: "ledger.csv".into(),
                size: 1,
                sha256: sha256_hex(b"x"),
            }],
            totals: Totals {
                currency: "USD".into(),
                billed_total: "1.00".into(),
                estimated_total: "0.00".into(),
                attributed_total: "1.00".into(),
                unattributed: "0.00".into(),
                charged_total: "1.00".into(),
                other_billed_total: "0.00".into(),
                invoices: 1,
                exceptions: 0,
                quarantined_rows: 0,
                duplicates_dropped: 0,
            },
        };
        assert_eq!(Manifest::parse(&m.to_bytes(), "m.json").unwrap(), m);
        let e = Manifest::parse(b"{}", "m.json").unwrap_err();
        assert_eq!(
            e.report(),
            "error: m.json: not a manifest: missing field `tool` at line 1 column 2\n\
             hint: give `--pin-manifest` the manifest.json of a published month\n"
        );
    }
}

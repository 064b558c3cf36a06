//! Stage four: `manifest.json`, what a run read and wrote, with hashes, so
//! an auditor can check a historic month byte for byte. One type, written
//! by a run and read back by the next (publishing over a month, pinning a
//! rerun to it).

use serde::{Deserialize, Serialize};

use crate::compute::Month;
use crate::error::{Error, Location, Result};
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub period: String,
    pub issue_date: String,
    pub policy: ObjectRecord,
    pub catalog: ObjectRecord,
    pub inputs: Vec<ObjectRecord>,
    pub outputs: Vec<OutputRecord>,
    pub totals: Totals,
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
        policy: policy.record.clone(),
        catalog: inputs.catalog_record.clone(),
        inputs: inputs.records.clone(),
        outputs: outputs.records(),
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
            policy: record("policy.toml"),
            catalog: record("catalog.json"),
            inputs: vec![record("logs/a.csv")],
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

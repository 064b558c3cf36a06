//! `manifest.json`: what a run read and wrote, with hashes, so an auditor
//! can check a historic month byte for byte. Written last.

use serde::Serialize;

use crate::load::store::ObjectRecord;

#[derive(Debug, Clone, Serialize)]
pub struct OutputRecord {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

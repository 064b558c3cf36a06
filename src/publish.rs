//! Writing a closed month: every output, then `manifest.json` last, so a
//! reader that sees a manifest sees a complete set. A run that dies midway
//! leaves no manifest; the next run removes what the last manifest (or the
//! unfinished publish) listed and this one does not. A closed month is not
//! replaced by different outputs without `--force`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::seal::{Manifest, OutputRecord, sha256_hex};
use crate::period::Period;
use crate::load::store::join;

pub const MANIFEST: &str = "manifest.json";

/// Written before the first output and removed after the manifest: the
/// paths an unfinished publish may have left behind, for the next run to
/// clean up.
pub const PUBLISHING: &str = ".chargeback-publishing.json";

/// Outputs by path relative to the output folder; sorted, so the manifest
/// lists them in a stable order.
#[derive(Debug, Default)]
pub struct Outputs {
    files: BTreeMap<String, Vec<u8>>,
}

impl Outputs {
    pub fn add(&mut self, path: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert(path.into(), bytes);
    }

    pub fn add_json<T: Serialize>(&mut self, path: &str, value: &T) {
        let mut bytes = serde_json::to_vec_pretty(value).expect("view models serialise");
        bytes.push(b'\n');
        self.add(path, bytes);
    }

    pub fn records(&self) -> Vec<OutputRecord> {
        self.files
            .iter()
            .map(|(path, bytes)| OutputRecord {
                path: path.clone(),
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            })
            .collect()
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

/// How to publish.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishOptions {
    /// Replace a closed month even when this run's outputs differ.
    pub force: bool,
}

/// Publishes the outputs under `out` and the manifest last.
pub fn publish(ctx: &Context, out: &str, outputs: &Outputs, manifest: &Manifest) -> Result<()> {
    publish_with(ctx, out, outputs, manifest, PublishOptions::default())
}

/// [`publish`], with options.
pub fn publish_with(
    ctx: &Context,
    out: &str,
    outputs: &Outputs,
    manifest: &Manifest,
    options: PublishOptions,
) -> Result<()> {
    let manifest_url = join(out, MANIFEST);
    let marker_url = join(out, PUBLISHING);
    let mut bytes = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
    bytes.push(b'\n');

    let previous = match ctx.store.try_exists(&manifest_url)? {
        true => Some(ctx.store.read(&manifest_url)?),
        false => None,
    };
    let refused = previous
        .as_deref()
        .filter(|old| !options.force && is_closed(old) && **old != bytes[..]);
    if let Some(old) = refused {
        return Err(Error::usage(format!(
            "{} is closed at `{out}` and this run differs from it: {}",
            manifest.period,
            differences(old, manifest)
        ))
        .with_hint(format!(
            "rerun with `--force` to replace the closed month, or with `--pin-manifest {manifest_url}` to read what it read"
        )));
    }
    // Everything a previous publish may have written: the last manifest's
    // outputs and those of an unfinished publish.
    let mut stale: BTreeSet<String> = previous.as_deref().map(listed_outputs).unwrap_or_default();
    if ctx.store.try_exists(&marker_url)? {
        stale.extend(listed_outputs(&ctx.store.read(&marker_url)?));
    }
    stale.retain(|p| !outputs.files.contains_key(p) && is_relative_inside(p));
    let mut marker = serde_json::to_vec_pretty(&serde_json::json!({
        "outputs": stale
            .iter()
            .map(String::as_str)
            .chain(outputs.paths())
            .map(|p| serde_json::json!({ "path": p }))
            .collect::<Vec<_>>(),
    }))
    .expect("marker serialises");
    marker.push(b'\n');
    ctx.store.write(&marker_url, &marker)?;

    // From here until the new manifest lands, the folder has none, unless
    // this run gives the very same manifest: then every output it lists is
    // rewritten with the bytes it records, and it can stay.
    if previous.as_deref() != Some(&bytes[..]) {
        ctx.store.delete(&manifest_url)?;
    }
    let files: Vec<(String, &[u8])> = outputs
        .files
        .iter()
        .map(|(path, bytes)| (join(out, path), &bytes[..]))
        .collect();
    ctx.store.write_many(&files)?;
    for path in &stale {
        ctx.store.delete(&join(out, path))?;
    }
    ctx.store.write(&manifest_url, &bytes)?;
    ctx.store.delete(&marker_url)
}

/// Whether a published manifest closed its month: issued on or after the
/// first day after the period (a mid-month `--as-of` run is preliminary).
/// A manifest that cannot be read as one counts as closed.
fn is_closed(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return true;
    };
    let period = v["period"].as_str().and_then(|p| p.parse::<Period>().ok());
    let issued = v["issue_date"]
        .as_str()
        .and_then(|d| d.parse::<NaiveDate>().ok());
    match (period, issued) {
        (Some(p), Some(d)) => d >= p.end(),
        _ => true,
    }
}

/// What differs between a published manifest and this run's, in a line.
fn differences(old: &[u8], new: &Manifest) -> String {
    let v: serde_json::Value = serde_json::from_slice(old).unwrap_or_default();
    let before: BTreeMap<String, String> = v["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| Some((o["path"].as_str()?.to_string(), o["sha256"].to_string())))
        .collect();
    let after: BTreeMap<String, String> = new
        .outputs
        .iter()
        .map(|o| {
            (
                o.path.clone(),
                serde_json::Value::from(o.sha256.clone()).to_string(),
            )
        })
        .collect();
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    if changed.is_empty() {
        return "the same outputs, from different inputs or policy".into();
    }
    let mut shown: Vec<String> = changed.iter().take(5).map(|p| format!("`{p}`")).collect();
    if changed.len() > 5 {
        shown.push(format!("and {} more", changed.len() - 5));
    }
    format!("{} differ", shown.join(", "))
}

fn listed_outputs(bytes: &[u8]) -> BTreeSet<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return BTreeSet::new();
    };
    v["outputs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A path from an old manifest is only trusted inside the output folder.
fn is_relative_inside(p: &str) -> bool {
    !p.starts_with('/') && !p.contains('\\') && p.split('/').all(|s| !s.is_empty() && s != "..")
}

/// A CSV document from a header and rows.
pub fn csv_bytes<H, R>(header: H, rows: impl IntoIterator<Item = R>) -> Vec<u8>
where
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for r in rows {
        w.write_record(r).expect("writing to memory");
    }
    w.into_inner()
        .map_err(|e| Error::storage("csv", e.to_string()))
        .expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_paths_must_stay_inside() {
        assert!(is_relative_inside("invoices/a.html"));
        assert!(!is_relative_inside("../x"));
        assert!(!is_relative_inside("/etc/passwd"));
        assert!(!is_relative_inside("a//b"));
    }

    fn manifest(issue_date: &str, outputs: &Outputs) -> Manifest {
        let record = crate::load::store::ObjectRecord {
            url: "memory://policy.toml".into(),
            size: 0,
            etag: None,
            version: None,
            sha256: String::new(),
        };
        Manifest {
            tool: "llm-chargeback".into(),
            version: "0".into(),
            period: "2025-01".into(),
            issue_date: issue_date.into(),
            policy: record.clone(),
            catalog: record,
            inputs: Vec::new(),
            outputs: outputs.records(),
            totals: crate::seal::Totals {
                currency: "USD".into(),
                billed_total: "0.00".into(),
                estimated_total: "0.00".into(),
                attributed_total: "0.00".into(),
                unattributed: "0.00".into(),
                charged_total: "0.00".into(),
                other_billed_total: "0.00".into(),
                invoices: 0,
                exceptions: 0,
                quarantined_rows: 0,
                duplicates_dropped: 0,
            },
        }
    }

    fn outputs(files: &[(&str, &str)]) -> Outputs {
        let mut o = Outputs::default();
        for (p, text) in files {
            o.add(*p, text.as_bytes().to_vec());
        }
        o
    }

    #[test]
    fn a_closed_month_changes_only_with_force() {
        let ctx = Context::new(crate::load::store::Store::new());
        let out = "memory://out/2025-01/";
        let first = outputs(&[("a.csv", "1"), ("b.csv", "2")]);
        publish(&ctx, out, &first, &manifest("2025-02-01", &first)).unwrap();
        // The same bytes again: fine.
        publish(&ctx, out, &first, &manifest("2025-02-01", &first)).unwrap();
        let second = outputs(&[("a.csv", "1"), ("c.csv", "3")]);
        let e = publish(&ctx, out, &second, &manifest("2025-02-01", &second)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2025-01 is closed at `memory://out/2025-01/` and this run differs from it: `b.csv`, `c.csv` differ"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(ctx.store.exists("memory://out/2025-01/b.csv"));
        let force = PublishOptions { force: true };
        publish_with(&ctx, out, &second, &manifest("2025-02-01", &second), force).unwrap();
        assert!(
            !ctx.store.exists("memory://out/2025-01/b.csv"),
            "stale removed"
        );
        assert!(ctx.store.exists("memory://out/2025-01/c.csv"));
    }

    #[test]
    fn a_preliminary_month_is_replaced_freely() {
        let ctx = Context::new(crate::load::store::Store::new());
        let out = "memory://out/2025-01";
        let first = outputs(&[("a.csv", "1")]);
        publish(&ctx, out, &first, &manifest("2025-01-15", &first)).unwrap();
        let second = outputs(&[("a.csv", "2")]);
        publish(&ctx, out, &second, &manifest("2025-02-01", &second)).unwrap();
        assert_eq!(
            &*ctx.store.read("memory://out/2025-01/a.csv").unwrap(),
            b"2"
        );
    }

    #[test]
    fn an_unfinished_publish_is_cleaned_up_by_the_next() {
        let ctx = Context::new(crate::load::store::Store::new());
        let out = "memory://out/2025-01";
        // What a publish that died after its outputs leaves: its marker,
        // its files, no manifest.
        ctx.store
            .write(
                &join(out, PUBLISHING),
                br#"{"outputs":[{"path":"old.csv"},{"path":"a.csv"}]}"#,
            )
            .unwrap();
        ctx.store.write(&join(out, "old.csv"), b"x").unwrap();
        let o = outputs(&[("a.csv", "1")]);
        publish(&ctx, out, &o, &manifest("2025-02-01", &o)).unwrap();
        assert!(!ctx.store.exists(&join(out, "old.csv")));
        assert!(!ctx.store.exists(&join(out, PUBLISHING)));
        assert!(ctx.store.exists(&join(out, MANIFEST)));
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let b = csv_bytes(["a", "b"], [["x,y".to_string(), "plain".to_string()]]);
        assert_eq!(String::from_utf8(b).unwrap(), "a,b\n\"x,y\",plain\n");
    }
}

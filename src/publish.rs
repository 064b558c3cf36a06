//! Writing a closed month: every output, then `manifest.json` last, so a
//! reader that sees a manifest sees a complete set. A run that dies midway
//! leaves no manifest; the next run removes what the last manifest (or the
//! unfinished publish) listed and this one does not. A closed month is not
//! replaced by different outputs without `--force`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::load::store::join;
use crate::period::Period;
use crate::seal::{Manifest, OutputRecord, sha256_hex};

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

    let previous = match ctx.store.try_exists(&manifest_url)? {
        true => Some(ctx.store.read(&manifest_url)?),
        false => None,
    };
    // A manifest that does not read as one is taken as a closed month that
    // lists nothing: never replaced without `--force`, nothing removed.
    let published = previous
        .as_deref()
        .map(|old| Manifest::parse(old, &manifest_url).ok());
    // The amendments of a month are history, whatever replaces it.
    let mut manifest = manifest.clone();
    if let Some(Some(old)) = &published
        && manifest.amendment.is_none()
    {
        manifest.amended = old.amended;
        manifest.amendments = old.amendments.clone();
    }
    let manifest = &manifest;
    let bytes = manifest.to_bytes();
    let refused = previous
        .as_deref()
        .zip(published.as_ref())
        .filter(|(old, m)| {
            !options.force && m.as_ref().is_none_or(is_closed) && **old != bytes[..]
        });
    if let Some((_, old)) = refused {
        return Err(Error::usage(format!(
            "{} is closed at `{out}` and this run differs from it: {}",
            manifest.period,
            differences(old.as_ref(), manifest)
        ))
        .with_hint(format!(
            "to issue credit and debit notes for what changed, `chargeback amend --period {} --as-of DATE`; to read what the month read, rerun with `--pin-manifest {manifest_url}`; to replace it, rerun with `--force`",
            manifest.period
        )));
    }
    // Everything a previous publish may have written: the last manifest's
    // outputs and those of an unfinished publish.
    let mut stale: BTreeSet<String> = published
        .into_iter()
        .flatten()
        .flat_map(|m| m.outputs.into_iter().map(|o| o.path))
        .collect();
    if ctx.store.try_exists(&marker_url)? {
        stale.extend(Marker::parse(&ctx.store.read(&marker_url)?));
    }
    stale.retain(|p| !outputs.files.contains_key(p) && is_relative_inside(p));
    let marker = Marker {
        outputs: stale
            .iter()
            .map(String::as_str)
            .chain(outputs.paths())
            .map(|path| MarkerEntry { path: path.into() })
            .collect(),
    };
    ctx.store.write(&marker_url, &marker.to_bytes())?;

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

/// The paths an unfinished publish may have written (`.chargeback-publishing.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    outputs: Vec<MarkerEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MarkerEntry {
    path: String,
}

impl Marker {
    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a marker serialises");
        bytes.push(b'\n');
        bytes
    }

    /// The paths of a marker; one that does not read as one lists none.
    fn parse(bytes: &[u8]) -> Vec<String> {
        serde_json::from_slice::<Marker>(bytes)
            .map(|m| m.outputs.into_iter().map(|e| e.path).collect())
            .unwrap_or_default()
    }
}

/// Whether a published manifest closed its month: issued on or after the
/// first day after the period (a mid-month `--as-of` run is preliminary).
/// Dates that do not read as dates count as closed.
pub fn is_closed(m: &Manifest) -> bool {
    let period = m.period.parse::<Period>().ok();
    let issued = m.issue_date.parse::<NaiveDate>().ok();
    match (period, issued) {
        (Some(p), Some(d)) => d >= p.end(),
        _ => true,
    }
}

/// What differs between a published manifest and this run's, in a line.
fn differences(old: Option<&Manifest>, new: &Manifest) -> String {
    let hashes = |m: &Manifest| -> BTreeMap<String, String> {
        m.outputs
            .iter()
            .map(|o| (o.path.clone(), o.sha256.clone()))
            .collect()
    };
    let before = old.map(hashes).unwrap_or_default();
    let after = hashes(new);
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

/// A path from an old manifest is only trusted inside the output folder.
pub fn is_relative_inside(p: &str) -> bool {
    !p.starts_with('/') && !p.contains('\\') && p.split('/').all(|s| !s.is_empty() && s != "..")
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
            as_of: None,
            amendment: None,
            reason: None,
            carried_notes: Vec::new(),
            amended: false,
            amendments: Vec::new(),
            engine: None,
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
        assert!(ctx.store.try_exists("memory://out/2025-01/b.csv").unwrap());
        let force = PublishOptions { force: true };
        publish_with(&ctx, out, &second, &manifest("2025-02-01", &second), force).unwrap();
        assert!(
            !ctx.store.try_exists("memory://out/2025-01/b.csv").unwrap(),
            "stale removed"
        );
        assert!(ctx.store.try_exists("memory://out/2025-01/c.csv").unwrap());
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
        assert!(!ctx.store.try_exists(&join(out, "old.csv")).unwrap());
        assert!(!ctx.store.try_exists(&join(out, PUBLISHING)).unwrap());
        assert!(ctx.store.try_exists(&join(out, MANIFEST)).unwrap());
    }
}

//! Writing a closed month: every output, then `manifest.json` last, so a
//! reader that sees a manifest sees a complete set. A run that dies midway
//! leaves no manifest; the next run removes what the last manifest listed
//! and this one does not.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, OutputRecord, sha256_hex};
use crate::store::join;

pub const MANIFEST: &str = "manifest.json";

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

/// Publishes the outputs under `out` and the manifest last.
pub fn publish(ctx: &Context, out: &str, outputs: &Outputs, manifest: &Manifest) -> Result<()> {
    let manifest_url = join(out, MANIFEST);
    let previous: Vec<String> = match ctx.store.exists(&manifest_url) {
        true => previous_outputs(ctx, &manifest_url),
        false => Vec::new(),
    };
    // From here until the new manifest lands, the folder has none.
    ctx.store.delete(&manifest_url)?;
    for (path, bytes) in &outputs.files {
        ctx.store.write(&join(out, path), bytes)?;
    }
    for stale in previous.iter().filter(|p| !outputs.files.contains_key(*p)) {
        if is_relative_inside(stale) {
            ctx.store.delete(&join(out, stale))?;
        }
    }
    let mut bytes = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
    bytes.push(b'\n');
    ctx.store.write(&manifest_url, &bytes)
}

fn previous_outputs(ctx: &Context, url: &str) -> Vec<String> {
    let Ok(text) = ctx.store.read_text(url) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
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
pub fn csv_bytes<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for r in rows {
        w.write_record(&r).expect("writing to memory");
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

    #[test]
    fn csv_quotes_what_needs_it() {
        let b = csv_bytes(["a", "b"], [["x,y".to_string(), "plain".to_string()]]);
        assert_eq!(String::from_utf8(b).unwrap(), "a,b\n\"x,y\",plain\n");
    }
}

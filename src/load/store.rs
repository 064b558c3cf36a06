//! Where bytes come from and go to: local paths, `file://`, `memory://`
//! and object stores (`s3://`, `gs://`, `az://` / `abfss://`, `https://`)
//! through the `object_store` crate Polars itself builds.
//!
//! Every read and write of the run goes through a [`Store`], so tests can
//! hand the pipeline an in-memory store and an auditor's rerun can record
//! exactly what was read (size, ETag, version and sha256 of every object)
//! and pin a rerun to those versions. Credentials never leave this module:
//! every error text it returns has known secret values masked.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientConfigKey, GetOptions, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload,
    RetryConfig,
};
use polars::prelude::{PlRefPath, ScanSources};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};

const MEMORY: &str = "memory://";

/// URL schemes served by an object store client.
const REMOTE_SCHEMES: [&str; 10] = [
    "s3://", "s3a://", "gs://", "az://", "adl://", "azure://", "abfs://", "abfss://", "http://",
    "https://",
];

/// Objects above this size are downloaded to a temporary file that Polars
/// scans from disk; smaller ones are scanned from memory.
const DEFAULT_SPOOL_ABOVE_MB: u64 = 64;

/// Remote writes in flight at once when publishing: enough to hide a
/// round trip per object, few enough not to trip a bucket's request-rate
/// limits (S3 allows 3,500 PUTs a second per prefix).
const PUT_CONCURRENCY: usize = 16;

const MISSING_HINT: &str = "check the path in [sources] and the `--period` it was expanded with";

/// The hint for a file that is not there; a relative local path adds where
/// it was looked for, since people expect it next to the policy.
fn missing_hint(url: &str) -> String {
    match target(url) {
        Target::Local(path) if path.is_relative() => format!(
            "{MISSING_HINT}; relative paths are read from the working directory, not the policy's folder"
        ),
        _ => MISSING_HINT.to_string(),
    }
}

const SPOOL_HINT: &str = "objects past [storage] spool_above_mb are copied to a temporary folder \
                          (TMPDIR); check that it is writable and has room";

const LOCAL_WRITE_HINT: &str = "check that the output folder can be created and written to";

/// What a run read: enough for an auditor to check, and re-read, the same
/// bytes. `etag` and `version` are the store's, when it has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub url: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub sha256: String,
}

/// The policy's `[storage]` table: retries, timeouts and per-cloud options.
/// The per-cloud tables take `object_store`'s option names (`endpoint`,
/// `region`, `account_name`, …); credentials are better left to the
/// environment, and are masked in every message when given here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageOptions {
    /// Retries of a request after a transient error (5xx, reset, timeout).
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// No retry starts later than this after the first try.
    #[serde(default)]
    pub retry_timeout_seconds: Option<u64>,
    /// Timeout of one request.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Objects above this many MiB are spooled to a temporary file for
    /// Polars to scan from disk.
    #[serde(default)]
    pub spool_above_mb: Option<u64>,
    #[serde(default, deserialize_with = "s3_options")]
    pub s3: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "gcs_options")]
    pub gcs: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "azure_options")]
    pub azure: BTreeMap<String, String>,
}

/// An option value as TOML may spell it: `"true"`, `true` or `5`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OptionValue {
    Text(String),
    Flag(bool),
    Number(i64),
}

fn options<'de, D: Deserializer<'de>>(
    d: D,
    table: &str,
    known: fn(&str) -> bool,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, OptionValue>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (key, value) in raw {
        if !known(&key.to_ascii_lowercase()) {
            return Err(serde::de::Error::custom(format!(
                "unknown [storage.{table}] option `{key}`"
            )));
        }
        let value = match value {
            OptionValue::Text(s) => s,
            OptionValue::Flag(b) => b.to_string(),
            OptionValue::Number(n) => n.to_string(),
        };
        out.insert(key.to_ascii_lowercase(), value);
    }
    Ok(out)
}

fn s3_options<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    options(d, "s3", |k| k.parse::<AmazonS3ConfigKey>().is_ok())
}

fn gcs_options<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    options(d, "gcs", |k| k.parse::<GoogleConfigKey>().is_ok())
}

fn azure_options<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    options(d, "azure", |k| k.parse::<AzureConfigKey>().is_ok())
}

/// The store every byte of a run goes through. Cheap to clone; clones
/// share their state.
#[derive(Clone, Default)]
pub struct Store {
    memory: Arc<Mutex<BTreeMap<String, Arc<[u8]>>>>,
    remote: Arc<Remote>,
}

/// Printing a store never prints its options (they may hold credentials).
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Remote {
    state: Mutex<RemoteState>,
    runtime: OnceLock<tokio::runtime::Runtime>,
    spool: OnceLock<tempfile::TempDir>,
}

#[derive(Default)]
struct RemoteState {
    options: StorageOptions,
    /// One client per bucket or container, built on first use.
    clients: BTreeMap<String, Arc<dyn ObjectStore>>,
    /// What a pinned rerun must read, by URL.
    pins: BTreeMap<String, ObjectRecord>,
    /// The policy the pinned run read: a rerun that reads its policy from
    /// the same URL must read the same bytes.
    policy_pin: Option<ObjectRecord>,
    /// A manifest to pin to once the policy's options are known.
    pending_pins: Option<String>,
    pins_loaded: bool,
    /// Remote objects already read: their record and where their bytes are.
    fetched: BTreeMap<String, Fetched>,
    /// Bytes of remote objects held in memory; past `spool_above_mb`, the
    /// next object goes to a temporary file, however small.
    in_memory: u64,
    /// The variables the clouds' clients are configured from; `None`: the
    /// process environment.
    env: Option<Vec<(String, String)>>,
}

#[derive(Clone)]
struct Fetched {
    record: ObjectRecord,
    body: Body,
}

#[derive(Clone)]
enum Body {
    Memory(Arc<[u8]>),
    Spooled(PathBuf),
}

enum Target<'a> {
    Local(PathBuf),
    Memory(&'a str),
    Remote,
}

fn target(url: &str) -> Target<'_> {
    if let Some(key) = url.strip_prefix(MEMORY) {
        Target::Memory(key)
    } else if let Some(path) = url.strip_prefix("file://") {
        Target::Local(PathBuf::from(path))
    } else if is_remote(url) {
        Target::Remote
    } else {
        Target::Local(PathBuf::from(url))
    }
}

/// Whether a URL names an object store (rather than a local file or the
/// in-memory store).
pub fn is_remote(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    REMOTE_SCHEMES.iter().any(|s| lower.starts_with(s))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn io_error(url: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::input(Location::file(url), "no such file").with_hint(missing_hint(url))
        }
        _ => Error::storage(url, format!("reading failed: {e}"))
            .with_hint("check that the file can be read"),
    }
}

/// A remote URL taken apart: the client it needs and the object's path.
#[derive(Debug)]
struct RemoteUrl {
    scheme: ObjectStoreScheme,
    /// `s3://bucket`, `https://account.blob.core.windows.net/container`, …
    base: String,
    path: ObjectPath,
}

fn parse_remote(url: &str) -> Result<RemoteUrl> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::input(Location::file(url), format!("not a valid URL: {e}")))?;
    let bad = |m: &str| Error::input(Location::file(shown(&parsed)), m.to_string());
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("storage URLs may not carry a query string").with_hint(
            "a query string can hold credentials (SAS tokens, signatures); give them as \
             environment variables or in [storage] instead",
        ));
    }
    // `abfss://container@account…` names the container where a user goes.
    if parsed.password().is_some()
        || (!parsed.username().is_empty() && !parsed.scheme().starts_with("abfs"))
    {
        return Err(bad("storage URLs may not carry credentials")
            .with_hint("give credentials as environment variables or in [storage] instead"));
    }
    let (scheme, path) = ObjectStoreScheme::parse(&parsed)
        .map_err(|_| bad("not a URL of a supported object store"))?;
    // The store's path is the tail of the URL's; what precedes it names
    // the bucket (and, for some forms, the account and container).
    let whole = parsed.as_str().trim_end_matches('/');
    let encoded = parsed.path().trim_end_matches('/');
    let keep = whole.len() - encoded_len_of(encoded, path.as_ref());
    let base = whole[..keep].trim_end_matches('/').to_string();
    Ok(RemoteUrl { scheme, base, path })
}

/// A URL fit to print: no password, no query string.
fn shown(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("****"));
    }
    if u.query().is_some() {
        u.set_query(Some("****"));
    }
    u.set_fragment(None);
    u.to_string()
}

/// How many bytes of the URL path the object path occupies (object paths
/// come back percent-decoded).
fn encoded_len_of(encoded: &str, object: &str) -> usize {
    if object.is_empty() {
        return 0;
    }
    // Walk segments from the end: the object path has as many segments as
    // it has, whatever their encoding.
    let n = object.split('/').count();
    let segments: Vec<&str> = encoded.split('/').collect();
    let tail = segments[segments.len().saturating_sub(n)..].join("/");
    tail.len()
}

/// The bytes of `url` as text, or the one error every text input gets.
pub fn utf8_text(url: &str, bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::input(Location::file(url), "the file is not UTF-8 text"))
}

/// The URL of an object listed under `base`.
fn object_url(base: &str, location: &ObjectPath) -> String {
    format!("{base}/{location}")
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// A store whose object-store clients see these variables instead of
    /// the process environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`, …): for
    /// tests, and for embedding the pipeline with credentials of its own.
    pub fn with_env(vars: impl IntoIterator<Item = (String, String)>) -> Store {
        let store = Store::default();
        store.state().env = Some(vars.into_iter().collect());
        store
    }

    /// Puts an object in the in-memory store (tests, examples).
    pub fn put_memory(&self, key: &str, bytes: impl Into<Arc<[u8]>>) {
        self.memory
            .lock()
            .expect("memory store lock")
            .insert(key.to_string(), bytes.into());
    }

    fn state(&self) -> MutexGuard<'_, RemoteState> {
        self.remote.state.lock().expect("store state lock")
    }

    /// Applies the policy's `[storage]` table, then the manifest a rerun is
    /// pinned to (if any): from here on every read is the pinned one.
    pub fn configure(&self, options: &StorageOptions) -> Result<()> {
        let pending = {
            let mut st = self.state();
            if st.options != *options {
                st.options = options.clone();
                st.clients.clear();
            }
            st.pending_pins.take()
        };
        if let Some(url) = pending {
            self.load_pins(&url)?;
        }
        Ok(())
    }

    /// Pins this run's reads to what the manifest at `url` records. The
    /// manifest is read when the policy's storage options are known
    /// ([`Store::configure`]).
    pub fn pin_to_manifest(&self, url: &str) {
        self.state().pending_pins = Some(url.to_string());
    }

    /// Whether a manifest's pins are in force.
    pub fn pins_loaded(&self) -> bool {
        self.state().pins_loaded
    }

    /// The objects a pinned run must read (inputs of the pinned manifest).
    pub fn pinned(&self) -> Vec<ObjectRecord> {
        self.state().pins.values().cloned().collect()
    }

    fn load_pins(&self, url: &str) -> Result<()> {
        let manifest = crate::seal::Manifest::parse(&self.read(url)?, url)?;
        let pins = manifest
            .inputs
            .into_iter()
            .map(|i| i.object)
            .chain([manifest.catalog])
            .map(|r| (r.url.clone(), r))
            .collect();
        let mut st = self.state();
        st.pins = pins;
        st.policy_pin = Some(manifest.policy);
        st.pins_loaded = true;
        Ok(())
    }

    fn pin(&self, url: &str) -> Option<ObjectRecord> {
        self.state().pins.get(url).cloned()
    }

    /// The record a read of `url` is checked against: an input's or the
    /// catalog's, or the policy's.
    fn check_pin(&self, url: &str) -> Option<ObjectRecord> {
        let st = self.state();
        st.pins
            .get(url)
            .cloned()
            .or_else(|| st.policy_pin.as_ref().filter(|p| p.url == url).cloned())
    }

    /// The URLs a source pattern names, sorted. A pattern without glob
    /// characters names itself (whether it exists is found on read); a glob
    /// that matches nothing is an error. A run pinned to a manifest lists
    /// exactly the manifest's objects that match.
    pub fn list(&self, pattern: &str) -> Result<Vec<String>> {
        if !has_glob(pattern) {
            return Ok(vec![pattern.to_string()]);
        }
        let bad_glob = |e: glob::PatternError| {
            Error::input(Location::file(pattern), format!("bad glob pattern: {e}"))
        };
        let pinned: Vec<String> = {
            let st = self.state();
            if st.pins.is_empty() {
                Vec::new()
            } else {
                let pat = glob::Pattern::new(pattern).map_err(bad_glob)?;
                st.pins
                    .keys()
                    .filter(|u| pat.matches_with(u, separator_literal()))
                    .cloned()
                    .collect()
            }
        };
        if !pinned.is_empty() {
            return Ok(pinned);
        }
        let mut urls = match target(pattern) {
            Target::Memory(key) => {
                let pat = glob::Pattern::new(key).map_err(bad_glob)?;
                let mem = self.memory.lock().expect("memory store lock");
                mem.keys()
                    .filter(|k| pat.matches(k))
                    .map(|k| format!("{MEMORY}{k}"))
                    .collect::<Vec<_>>()
            }
            Target::Local(path) => {
                let prefix = if pattern.starts_with("file://") {
                    "file://"
                } else {
                    ""
                };
                let entries = glob::glob(&path.to_string_lossy()).map_err(bad_glob)?;
                let mut urls = Vec::new();
                for entry in entries {
                    let p = entry.map_err(|e| {
                        Error::storage(pattern, format!("listing failed: {e}"))
                            .with_hint("check that the folders of the pattern can be read")
                    })?;
                    if p.is_file() {
                        urls.push(format!("{prefix}{}", p.to_string_lossy()));
                    }
                }
                urls
            }
            Target::Remote => self.list_remote(pattern)?,
        };
        urls.sort();
        if urls.is_empty() {
            return Err(
                Error::input(Location::file(pattern), "the pattern matches no file")
                    .with_hint(missing_hint(pattern)),
            );
        }
        Ok(urls)
    }

    /// Lists a remote glob: everything under the folder before the first
    /// glob character, filtered by the pattern (`*` stays in one folder,
    /// `**` crosses folders).
    fn list_remote(&self, pattern: &str) -> Result<Vec<String>> {
        let first = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
        let folder = match pattern[..first].rfind('/') {
            Some(i) => &pattern[..=i],
            None => pattern,
        };
        let pat = glob::Pattern::new(pattern)
            .map_err(|e| Error::input(Location::file(pattern), format!("bad glob pattern: {e}")))?;
        let at = parse_remote(folder)?;
        let store = self.client(&at, folder)?;
        let prefix = (!at.path.as_ref().is_empty()).then_some(&at.path);
        let metas = self.block_on(async {
            let mut out = Vec::new();
            let mut stream = store.list(prefix);
            while let Some(meta) = stream.next().await {
                out.push(meta?);
            }
            Ok::<_, object_store::Error>(out)
        });
        let metas = metas.map_err(|e| self.remote_error(folder, "listing", e))?;
        Ok(metas
            .iter()
            .map(|m| object_url(&at.base, &m.location))
            .filter(|u| pat.matches_with(u, separator_literal()))
            .collect())
    }

    /// The whole object.
    pub fn read(&self, url: &str) -> Result<Arc<[u8]>> {
        match target(url) {
            Target::Memory(key) => self
                .memory
                .lock()
                .expect("memory store lock")
                .get(key)
                .cloned()
                .ok_or_else(|| io_error(url, std::io::ErrorKind::NotFound.into())),
            Target::Local(path) => std::fs::read(&path)
                .map(Arc::from)
                .map_err(|e| io_error(url, e)),
            Target::Remote => match self.fetch(url)?.body {
                Body::Memory(bytes) => Ok(bytes),
                Body::Spooled(path) => std::fs::read(&path).map(Arc::from).map_err(|e| {
                    Error::storage(url, format!("reading the temporary copy failed: {e}"))
                        .with_hint(SPOOL_HINT)
                }),
            },
        }
    }

    /// Reads a text object (a policy, a catalog).
    pub fn read_text(&self, url: &str) -> Result<String> {
        utf8_text(url, &self.read(url)?)
    }

    /// Size and sha256 of an object (streamed for local files), with the
    /// store's ETag and version for remote ones: the record of the very
    /// bytes the run read. A run pinned to a manifest checks them.
    pub fn record(&self, url: &str) -> Result<ObjectRecord> {
        let record = match target(url) {
            Target::Remote => self.fetch(url)?.record,
            Target::Memory(_) => {
                let bytes = self.read(url)?;
                ObjectRecord {
                    url: url.to_string(),
                    size: bytes.len() as u64,
                    etag: None,
                    version: None,
                    sha256: hex::encode(Sha256::digest(&bytes)),
                }
            }
            Target::Local(path) => {
                let mut hasher = Sha256::new();
                let mut f = std::fs::File::open(&path).map_err(|e| io_error(url, e))?;
                let mut buf = vec![0u8; 1 << 20];
                let mut size = 0u64;
                loop {
                    let n = f.read(&mut buf).map_err(|e| io_error(url, e))?;
                    if n == 0 {
                        break;
                    }
                    size += n as u64;
                    hasher.update(&buf[..n]);
                }
                ObjectRecord {
                    url: url.to_string(),
                    size,
                    etag: None,
                    version: None,
                    sha256: hex::encode(hasher.finalize()),
                }
            }
        };
        let pinned = self.check_pin(url).map(|p| p.sha256);
        if pinned.as_ref().is_some_and(|p| *p != record.sha256) {
            let pinned = pinned.unwrap_or_default();
            return Err(Error::input(
                Location::file(url),
                format!(
                    "the object is not the one the pinned manifest records (sha256 `{}`, pinned `{}`)",
                    record.sha256, pinned
                ),
            )
            .with_hint(
                "the input changed since the pinned run; restore it, or rerun without `--pin-manifest`",
            ));
        }
        Ok(record)
    }

    /// What Polars should scan for an object: the path itself for local
    /// files (so it can stream and memory-map); for remote objects a
    /// spooled local copy when large, the bytes otherwise; the bytes for
    /// `memory://`.
    pub fn scan_sources(&self, url: &str) -> Result<ScanSources> {
        let path_source = |p: &Path| {
            ScanSources::Paths(
                [PlRefPath::new(p.to_string_lossy().as_ref())]
                    .into_iter()
                    .collect(),
            )
        };
        // The bytes themselves, not a copy.
        let buffer_source = |bytes: Arc<[u8]>| {
            ScanSources::Buffers(
                [polars_buffer::Buffer::from_owner(bytes)]
                    .into_iter()
                    .collect(),
            )
        };
        match target(url) {
            Target::Local(path) => {
                if !path.is_file() {
                    return Err(io_error(url, std::io::ErrorKind::NotFound.into()));
                }
                Ok(path_source(&path))
            }
            Target::Memory(_) => Ok(buffer_source(self.read(url)?)),
            Target::Remote => match self.fetch(url)?.body {
                Body::Memory(bytes) => Ok(buffer_source(bytes)),
                Body::Spooled(path) => Ok(path_source(&path)),
            },
        }
    }

    /// Writes an object whole: a local file appears under its name only
    /// once complete (written beside it, then renamed); an object store's
    /// put is atomic.
    pub fn write(&self, url: &str, bytes: &[u8]) -> Result<()> {
        match target(url) {
            Target::Memory(key) => {
                self.put_memory(key, bytes.to_vec());
                Ok(())
            }
            Target::Local(path) => {
                let err = |e: std::io::Error| {
                    Error::storage(url, format!("writing failed: {e}")).with_hint(LOCAL_WRITE_HINT)
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let tmp = tmp_name(&path);
                std::fs::write(&tmp, bytes).map_err(err)?;
                std::fs::rename(&tmp, &path).map_err(err)
            }
            Target::Remote => self.block_on(self.put_remote(url, bytes)),
        }
    }

    /// Writes many objects as [`write`](Self::write) does: local files on
    /// the process's threads, remote objects up to `PUT_CONCURRENCY` at a
    /// time — a month of a thousand teams is four thousand PUTs, each
    /// waiting on the network. The error is the first failure in the given
    /// order; a remote publish stops there.
    pub fn write_many(&self, items: &[(String, &[u8])]) -> Result<()> {
        if items
            .iter()
            .any(|(url, _)| matches!(target(url), Target::Remote))
        {
            return self.block_on(async {
                let mut puts =
                    futures_util::stream::iter(items.iter().map(|(url, bytes)| async move {
                        match target(url) {
                            Target::Remote => self.put_remote(url, bytes).await,
                            _ => self.write(url, bytes),
                        }
                    }))
                    .buffered(PUT_CONCURRENCY);
                while let Some(put) = puts.next().await {
                    put?;
                }
                Ok(())
            });
        }
        use rayon::prelude::*;
        let results: Vec<Result<()>> = items
            .par_iter()
            .map(|(url, bytes)| self.write(url, bytes))
            .collect();
        results.into_iter().collect()
    }

    async fn put_remote(&self, url: &str, bytes: &[u8]) -> Result<()> {
        let at = parse_remote(url)?;
        let store = self.client(&at, url)?;
        store
            .put(&at.path, PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| self.remote_error(url, "writing", e))
    }

    /// Removes an object if it is there.
    pub fn delete(&self, url: &str) -> Result<()> {
        match target(url) {
            Target::Memory(key) => {
                self.memory.lock().expect("memory store lock").remove(key);
                Ok(())
            }
            Target::Local(path) => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::storage(url, format!("deleting failed: {e}"))
                    .with_hint(LOCAL_WRITE_HINT)),
            },
            Target::Remote => {
                let at = parse_remote(url)?;
                let store = self.client(&at, url)?;
                match self.block_on(store.delete(&at.path)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.remote_error(url, "deleting", e)),
                }
            }
        }
    }

    /// Whether an object exists, or why the store cannot tell.
    /// Whether `url` is a local folder (a policy or catalog named by its
    /// folder is a slip of the command line, not a missing file).
    pub fn is_local_folder(&self, url: &str) -> bool {
        match target(url) {
            Target::Local(path) => path.is_dir(),
            Target::Memory(_) | Target::Remote => false,
        }
    }

    pub fn try_exists(&self, url: &str) -> Result<bool> {
        match target(url) {
            Target::Memory(key) => Ok(self
                .memory
                .lock()
                .expect("memory store lock")
                .contains_key(key)),
            Target::Local(path) => match std::fs::metadata(&path) {
                Ok(meta) => Ok(meta.is_file()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(false)
                }
                Err(e) => Err(Error::storage(url, format!("checking failed: {e}"))
                    .with_hint("check that the folder can be read")),
            },
            Target::Remote => {
                let at = parse_remote(url)?;
                let store = self.client(&at, url)?;
                match self.block_on(store.head(&at.path)) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(self.remote_error(url, "checking", e)),
                }
            }
        }
    }

    /// Masks every credential the store knows of in a text.
    pub fn redact(&self, text: &str) -> String {
        let secrets = {
            let st = self.state();
            secrets(&st.options, &env_of(&st))
        };
        let mut out = text.to_string();
        for s in secrets {
            out = out.replace(&s, "****");
        }
        out
    }

    /// Reads a remote object once: streamed through sha256, kept in memory
    /// when small and spooled to a temporary file when large. A pinned
    /// object is read at its pinned version (or ETag).
    fn fetch(&self, url: &str) -> Result<Fetched> {
        if let Some(f) = self.state().fetched.get(url) {
            return Ok(f.clone());
        }
        let at = parse_remote(url)?;
        let store = self.client(&at, url)?;
        let pin = self.pin(url);
        let options = GetOptions {
            version: pin.as_ref().and_then(|p| p.version.clone()),
            if_match: pin
                .as_ref()
                .filter(|p| p.version.is_none())
                .and_then(|p| p.etag.clone()),
            ..GetOptions::default()
        };
        let result = self
            .block_on(store.get_opts(&at.path, options))
            .map_err(|e| self.remote_error(url, "reading", e))?;
        // In memory while the run holds less than `spool_above_mb` of
        // objects there; on disk otherwise, however small the object.
        let spool = {
            let mut st = self.state();
            let budget = st
                .options
                .spool_above_mb
                .unwrap_or(DEFAULT_SPOOL_ABOVE_MB)
                .saturating_mul(1 << 20);
            let held = st.in_memory.saturating_add(result.meta.size);
            if held > budget {
                true
            } else {
                st.in_memory = held;
                false
            }
        };
        let spool = match spool {
            true => Some(self.spool_path(url)?),
            false => None,
        };
        let got = self.block_on(async {
            let meta = result.meta.clone();
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut stream = result.into_stream();
            let body = if let Some(path) = spool {
                let mut file = std::fs::File::create(&path).map_err(|e| spool_error(&path, e))?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    file.write_all(&chunk).map_err(|e| spool_error(&path, e))?;
                }
                file.flush().map_err(|e| spool_error(&path, e))?;
                Body::Spooled(path)
            } else {
                let mut buf = Vec::with_capacity(meta.size as usize);
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    buf.extend_from_slice(&chunk);
                }
                Body::Memory(Arc::from(buf))
            };
            Ok::<_, object_store::Error>((meta, body, size, hex::encode(hasher.finalize())))
        });
        let (meta, body, size, sha256) = got.map_err(|e| self.remote_error(url, "reading", e))?;
        if size != meta.size {
            return Err(self.redacted(
                Error::storage(
                    url,
                    format!(
                        "reading failed: got {size} bytes of an object of {} bytes",
                        meta.size
                    ),
                )
                .with_hint(
                    "the object changed, or the connection dropped, while it was read; run again",
                ),
            ));
        }
        let fetched = Fetched {
            record: ObjectRecord {
                url: url.to_string(),
                size,
                etag: meta.e_tag,
                version: meta.version,
                sha256,
            },
            body,
        };
        self.state()
            .fetched
            .insert(url.to_string(), fetched.clone());
        Ok(fetched)
    }

    /// A fresh file name in this run's spool folder.
    fn spool_path(&self, url: &str) -> Result<PathBuf> {
        let dir = match self.remote.spool.get() {
            Some(d) => d,
            None => {
                let d = tempfile::Builder::new()
                    .prefix("chargeback-spool-")
                    .tempdir()
                    .map_err(|e| {
                        Error::storage(url, format!("creating a temporary folder failed: {e}"))
                            .with_hint(SPOOL_HINT)
                    })?;
                let _ = self.remote.spool.set(d);
                self.remote.spool.get().expect("spool folder set")
            }
        };
        let n = self.state().fetched.len();
        let name = url.rsplit('/').next().unwrap_or("object");
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(dir.path().join(format!("{n:05}-{name}")))
    }

    /// The client for a bucket or container, built once from the
    /// environment and the policy's options.
    fn client(&self, at: &RemoteUrl, url: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut st = self.state();
        if let Some(c) = st.clients.get(&at.base) {
            return Ok(c.clone());
        }
        let env = env_of(&st);
        let client = build_client(at, &st.options, &env).map_err(|e| {
            let e = match e {
                Setup::Store(e) => Error::storage(
                    url,
                    format!("cannot set up the store: {}", store_message(&e)),
                )
                .with_hint(credentials_hint(&at.scheme)),
                Setup::Ours { message, hint } => Error::storage(url, message).with_hint(hint),
            };
            redact_error(e, &secrets(&st.options, &env))
        })?;
        st.clients.insert(at.base.clone(), client.clone());
        Ok(client)
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.remote
            .runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("starting the storage runtime")
            })
            .block_on(f)
    }

    /// An object store's error as ours: a missing object is bad input (exit
    /// 1, with the usual hint), everything else is storage (exit 3) with
    /// the store's own message, credentials masked.
    fn remote_error(&self, url: &str, doing: &str, e: object_store::Error) -> Error {
        let message = store_message(&e);
        let retries = retries_of(&message);
        let message = message_without_retries(&message);
        let configured = self
            .state()
            .options
            .max_retries
            .unwrap_or(RetryConfig::default().max_retries);
        let scheme = parse_remote(url).map(|a| a.scheme).ok();
        let credentials = scheme
            .as_ref()
            .map(credentials_hint)
            .unwrap_or("check the store's credentials");
        let no_bucket = ["NoSuchBucket", "ContainerNotFound", "bucket does not exist"]
            .iter()
            .any(|m| message.contains(m));
        let after = match retries {
            Some(n) if n > 0 => format!(" after {n} {}", plural(n, "retry", "retries")),
            _ => String::new(),
        };
        let reading = doing == "reading" || doing == "listing";
        let err = match &e {
            object_store::Error::Generic { store: "spool", .. } => {
                Error::storage(url, format!("{doing} failed: {message}")).with_hint(SPOOL_HINT)
            }
            _ if no_bucket => {
                let bucket = parse_remote(url).map(|a| a.base).unwrap_or_default();
                let e = if reading {
                    Error::input(Location::file(url), format!("no such bucket `{bucket}`"))
                } else {
                    Error::storage(url, format!("{doing} failed: no such bucket `{bucket}`"))
                };
                e.with_hint(match scheme {
                    Some(ObjectStoreScheme::AmazonS3) => {
                        "check the bucket's name in the URL, and the endpoint and region it is \
                         looked up at (AWS_ENDPOINT_URL, AWS_REGION or [storage.s3])"
                    }
                    Some(ObjectStoreScheme::MicrosoftAzure) => {
                        "check the container's name in the URL, and the storage account \
                         (AZURE_STORAGE_ACCOUNT_NAME or [storage.azure])"
                    }
                    _ => "check the bucket's name in the URL",
                })
            }
            object_store::Error::NotFound { .. } if reading => {
                Error::input(Location::file(url), "no such file").with_hint(missing_hint(url))
            }
            object_store::Error::Precondition { .. } => Error::input(
                Location::file(url),
                "the object changed since the pinned manifest was written",
            )
            .with_hint("its ETag no longer matches; restore it, or rerun without `--pin-manifest`"),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                Error::storage(url, format!("{doing}: access denied: {message}"))
                    .with_hint(credentials)
            }
            _ if is_credentials_failure(&message) => {
                let detail = message.strip_prefix(CREDENTIALS_LEAD).unwrap_or(&message);
                Error::storage(url, format!("{doing}: no credentials found: {detail}"))
                    .with_hint(credentials)
            }
            _ => Error::storage(url, format!("{doing} failed{after}: {message}")).with_hint(
                match configured {
                    0 => "transient errors (5xx, 429, resets, timeouts) are not retried with \
                          [storage] max_retries = 0; check that the store is reachable, or raise \
                          it"
                    .to_string(),
                    n => format!(
                        "transient errors (5xx, 429, resets, timeouts) are retried up to {n} {}; \
                         check that the store is reachable, or raise [storage] max_retries",
                        plural(n, "time", "times")
                    ),
                },
            ),
        };
        self.redacted(err)
    }

    fn redacted(&self, e: Error) -> Error {
        let st = self.state();
        redact_error(e, &secrets(&st.options, &env_of(&st)))
    }
}

fn env_of(st: &RemoteState) -> Vec<(String, String)> {
    st.env.clone().unwrap_or_else(|| std::env::vars().collect())
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn spool_error(path: &Path, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "spool",
        source: format!("writing `{}`: {e}", path.display()).into(),
    }
}

fn separator_literal() -> glob::MatchOptions {
    glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    }
}

/// One line, no runs of blanks: store messages may quote an XML body.
fn clean_message(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The store's own words, on one line: the request that failed and the
/// answer (an S3 or Azure error's code and message rather than its XML, a
/// GCS error's message rather than its JSON), or the cause of a failed
/// connection (refused, unknown host, timeout), without timings, so that
/// the same failure reads the same every time.
fn store_message(e: &(dyn std::error::Error + 'static)) -> String {
    // The causes a message does not already quote: for a connection that
    // failed, `error sending request` says little and its causes say why.
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        source = s.source();
    }
    condense(&without_byte_lists(&clean_message(&text)))
}

/// A list of byte values (`[45, 45, 66, …]`) is how some parsers quote the
/// line they failed on, such as a line of a private key: never shown.
fn without_byte_lists(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let list = tail.find(']').map(|j| &tail[1..j]).filter(|inner| {
            inner.matches(',').count() >= 3
                && inner
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
        });
        match list {
            Some(inner) => {
                out.push_str("[bytes not shown]");
                rest = &tail[inner.len() + 2..];
            }
            None => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `object_store`'s `Error performing GET URL in 1.2ms, after 2 retries,
/// max_retries: 2, retry_timeout: 5s - Server returned non-2xx status code:
/// 500 Internal Server Error: <?xml…>` as `GET URL: 500 Internal Server
/// Error: InternalError: …`, with ` (after 2 retries)` kept for
/// [`retries_of`]. Any other text comes back as it is.
fn condense(text: &str) -> String {
    const PERFORMING: &str = "Error performing ";
    let Some(i) = text.rfind(PERFORMING) else {
        // `Generic S3 error: …` says no more than its tail.
        return match text.split_once(" error: ") {
            Some((head, tail)) if head.starts_with("Generic ") => tail.to_string(),
            _ => text.to_string(),
        };
    };
    let rest = &text[i + PERFORMING.len()..];
    let Some((head, answer)) = rest.split_once(" - ") else {
        return text.to_string();
    };
    let (request, timing) = head.rsplit_once(" in ").unwrap_or((head, ""));
    let retries = timing
        .split_once("after ")
        .and_then(|(_, t)| t.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok());
    // What object_store says before the request: a credential fetch is
    // worth keeping, a restatement of the path is not.
    let before = &text[..i];
    let lead = if before.contains("token request") || before.contains("credential") {
        CREDENTIALS_LEAD
    } else {
        ""
    };
    let answer = answer.trim();
    let answer = answer.strip_prefix("HTTP error: ").unwrap_or(answer);
    let answer = match answer
        .strip_prefix("Server returned non-2xx status code: ")
        .or_else(|| answer.strip_prefix("Server returned error response: "))
    {
        Some(a) => match a.find(": ") {
            Some(j) => format!("{}: {}", &a[..j], error_body(&a[j + 2..])),
            None => a.to_string(),
        },
        None => answer.to_string(),
    };
    let mut out = format!("{lead}{}: {answer}", request.trim());
    if let Some(n) = retries {
        out.push_str(&format!(" (after {n} retries)"));
    }
    out
}

/// An error body as its code and message: `<Code>X</Code><Message>Y`
/// (S3, Azure) → `X: Y`; `{"error": {"message": Y}}` (GCS) → `Y`; anything
/// else, cut short.
fn error_body(body: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&close)? + start;
        Some(body[start..end].trim().to_string())
    };
    if let Some(code) = tag("Code") {
        return match tag("Message") {
            // Azure appends a request id and a time: noise, and never the
            // same twice.
            Some(m) => format!("{code}: {}", m.split(" RequestId:").next().unwrap_or(&m)),
            None => code,
        };
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(m) = v["error"]["message"].as_str().or(v["message"].as_str())
    {
        return clean_message(m);
    }
    let mut cut: String = body.chars().take(200).collect();
    if cut.len() < body.len() {
        cut.push('…');
    }
    cut
}

const CREDENTIALS_LEAD: &str = "getting credentials: ";

/// The retries [`condense`] noted, if any.
fn retries_of(message: &str) -> Option<usize> {
    let (_, tail) = message.rsplit_once(" (after ")?;
    tail.strip_suffix(" retries)")?.parse().ok()
}

fn message_without_retries(message: &str) -> String {
    match message.rsplit_once(" (after ") {
        Some((m, tail)) if tail.ends_with(" retries)") => m.to_string(),
        _ => message.to_string(),
    }
}

/// Whether a failure came from looking for credentials where a cloud host
/// would have them (instance metadata, a container's credential endpoint):
/// off such hosts, it means none were given.
fn is_credentials_failure(message: &str) -> bool {
    message.starts_with(CREDENTIALS_LEAD)
        || ["169.254.169.254", "169.254.170.2", "fd00:ec2::254"]
            .iter()
            .any(|h| message.contains(h))
}

fn credentials_hint(scheme: &ObjectStoreScheme) -> &'static str {
    match scheme {
        ObjectStoreScheme::AmazonS3 => {
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION; AWS_ENDPOINT_URL for \
             an S3-compatible store), or the options of [storage.s3]"
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            "set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT), or the options of \
             [storage.gcs]"
        }
        ObjectStoreScheme::MicrosoftAzure => {
            "set AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or \
             AZURE_STORAGE_SAS_KEY, or the options of [storage.azure]"
        }
        _ => "check the URL and the store's credentials",
    }
}

/// Why a client could not be built: the store's own error, or ours, which
/// says what to change.
enum Setup {
    Store(object_store::Error),
    Ours { message: String, hint: String },
}

impl From<object_store::Error> for Setup {
    fn from(e: object_store::Error) -> Setup {
        Setup::Store(e)
    }
}

/// The variables of `env` a cloud's builder reads, as `object_store`'s
/// `from_env` reads them (those with the cloud's prefix whose name is an
/// option), so that a test can hand the builder an environment of its own.
fn env_config<K: std::str::FromStr>(
    env: &[(String, String)],
    prefix: &str,
) -> impl Iterator<Item = (K, String)> {
    env.iter()
        .filter(move |(k, _)| k.starts_with(prefix))
        .filter_map(|(k, v)| Some((k.to_ascii_lowercase().parse().ok()?, v.clone())))
}

fn env_var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn is_truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "true" | "on" | "yes" | "y"
        )
    })
}

/// A plain-HTTP endpoint is used only when allowed, as `object_store`
/// wants; said up front, since the client's own error (`builder error`)
/// does not say why.
fn check_http_endpoint(
    endpoint: Option<String>,
    allowed: bool,
    variable: &str,
    table: &str,
) -> std::result::Result<(), Setup> {
    match endpoint {
        Some(e) if e.to_ascii_lowercase().starts_with("http://") && !allowed => Err(Setup::Ours {
            message: format!("the endpoint `{e}` is plain HTTP, which is off unless allowed"),
            hint: format!(
                "set {variable}=true (or `allow_http = true` in [storage.{table}]) for a \
                     store on a trusted network, or give an `https://` endpoint"
            ),
        }),
        _ => Ok(()),
    }
}

fn build_client(
    at: &RemoteUrl,
    options: &StorageOptions,
    env: &[(String, String)],
) -> std::result::Result<Arc<dyn ObjectStore>, Setup> {
    let retry = RetryConfig {
        max_retries: options
            .max_retries
            .unwrap_or(RetryConfig::default().max_retries),
        retry_timeout: options
            .retry_timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(RetryConfig::default().retry_timeout),
        ..RetryConfig::default()
    };
    let timeout = options.timeout_seconds.map(|s| format!("{s}s"));
    let store: Arc<dyn ObjectStore> = match at.scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::new();
            for (k, v) in env_config::<AmazonS3ConfigKey>(env, "AWS_") {
                b = b.with_config(k, v);
            }
            b = b.with_url(at.base.clone()).with_retry(retry);
            if let Some(t) = &timeout {
                b = b.with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), t);
            }
            for (k, v) in &options.s3 {
                b = b.with_config(k.parse()?, v);
            }
            let allowed = is_truthy(
                b.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)),
            );
            let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
            check_http_endpoint(endpoint, allowed, "AWS_ALLOW_HTTP", "s3")?;
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::new();
            if let Some(path) = env_var(env, "SERVICE_ACCOUNT") {
                b = b.with_service_account_path(path);
            }
            for (k, v) in env_config::<GoogleConfigKey>(env, "GOOGLE_") {
                b = b.with_config(k, v);
            }
            b = b.with_url(at.base.clone()).with_retry(retry);
            if let Some(t) = &timeout {
                b = b.with_config(GoogleConfigKey::Client(ClientConfigKey::Timeout), t);
            }
            for (k, v) in &options.gcs {
                b = b.with_config(k.parse()?, v);
            }
            let allowed =
                is_truthy(b.get_config_value(&GoogleConfigKey::Client(ClientConfigKey::AllowHttp)));
            let endpoint = b.get_config_value(&GoogleConfigKey::BaseUrl);
            check_http_endpoint(endpoint, allowed, "GOOGLE_ALLOW_HTTP", "gcs")?;
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::new();
            for (k, v) in env_config::<AzureConfigKey>(env, "AZURE_") {
                b = b.with_config(k, v);
            }
            if let Some(endpoint) = env_var(env, "IDENTITY_ENDPOINT") {
                b = b.with_msi_endpoint(endpoint);
            }
            b = b.with_url(at.base.clone()).with_retry(retry);
            if let Some(t) = &timeout {
                b = b.with_config(AzureConfigKey::Client(ClientConfigKey::Timeout), t);
            }
            for (k, v) in &options.azure {
                b = b.with_config(k.parse()?, v);
            }
            // The emulator (Azurite) is plain HTTP by design.
            let allowed =
                is_truthy(b.get_config_value(&AzureConfigKey::Client(ClientConfigKey::AllowHttp)))
                    || is_truthy(b.get_config_value(&AzureConfigKey::UseEmulator));
            let endpoint = b.get_config_value(&AzureConfigKey::Endpoint);
            check_http_endpoint(endpoint, allowed, "AZURE_ALLOW_HTTP", "azure")?;
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::Http => {
            let mut b = HttpBuilder::new()
                .with_url(at.base.clone())
                .with_retry(retry);
            if let Some(t) = &timeout {
                b = b.with_config(ClientConfigKey::Timeout, t);
            }
            if at.base.starts_with("http://") {
                b = b.with_config(ClientConfigKey::AllowHttp, "true");
            }
            Arc::new(b.build()?)
        }
        _ => {
            return Err(Setup::Store(object_store::Error::NotSupported {
                source: "this URL scheme".into(),
            }));
        }
    };
    Ok(store)
}

/// Whether an option or variable name holds a credential.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    if n.ends_with("key_id") || n.ends_with("_client_id") || n == "client_id" {
        return false;
    }
    ["secret", "token", "password", "sas", "key", "credential"]
        .iter()
        .any(|w| n.contains(w))
        && !n.ends_with("application_credentials")
}

/// Every credential value the store may use: from the environment of the
/// three clouds and from the policy's options.
fn secrets(options: &StorageOptions, env: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = env
        .iter()
        .filter(|(k, _)| {
            (k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_"))
                && is_secret_name(k)
        })
        .map(|(_, v)| v.clone())
        .collect();
    for map in [&options.s3, &options.gcs, &options.azure] {
        out.extend(
            map.iter()
                .filter(|(k, _)| is_secret_name(k))
                .map(|(_, v)| v.clone()),
        );
    }
    // A SAS token travels as a query string, re-encoded: its signature is
    // masked however it is spelled.
    let signatures: Vec<String> = out
        .iter()
        .filter(|s| s.contains('='))
        .flat_map(|s| url::form_urlencoded::parse(s.trim_start_matches('?').as_bytes()))
        .filter(|(k, _)| k == "sig")
        .flat_map(|(_, v)| {
            let encoded: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            [v.into_owned(), encoded]
        })
        .collect();
    out.extend(signatures);
    // Longest first, so a secret containing another is masked whole; short
    // values would mask ordinary words.
    out.retain(|s| s.len() >= 6);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn redact_error(e: Error, secrets: &[String]) -> Error {
    let mask = |s: String| {
        secrets
            .iter()
            .fold(s, |acc, secret| acc.replace(secret.as_str(), "****"))
    };
    match e {
        Error::Storage { url, message, hint } => Error::Storage {
            url: mask(url),
            message: mask(message),
            hint: hint.map(mask),
        },
        Error::Input { at, message, hint } => Error::Input {
            at,
            message: mask(message),
            hint: hint.map(mask),
        },
        other => other,
    }
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Joins a relative object name onto a folder URL.
pub fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_lists_sorted_and_records() {
        let s = Store::new();
        s.put_memory("logs/b.csv", b"x".to_vec());
        s.put_memory("logs/a.csv", b"abc".to_vec());
        s.put_memory("other/c.csv", b"".to_vec());
        assert_eq!(
            s.list("memory://logs/*.csv").unwrap(),
            vec!["memory://logs/a.csv", "memory://logs/b.csv"]
        );
        let r = s.record("memory://logs/a.csv").unwrap();
        assert_eq!(r.size, 3);
        assert_eq!(
            r.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let e = s.list("memory://none/*.csv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory://none/*.csv: the pattern matches no file"
        );
        let e = s.read("memory://nope.csv").unwrap_err();
        assert_eq!(e.to_string(), "memory://nope.csv: no such file");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn local_write_is_whole_and_deletable() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("out/x.txt").to_string_lossy().to_string();
        let s = Store::new();
        s.write(&url, b"hello").unwrap();
        assert!(s.try_exists(&url).unwrap());
        assert!(!Path::new(&format!("{url}.partial")).exists());
        assert_eq!(&*s.read(&url).unwrap(), b"hello");
        s.delete(&url).unwrap();
        assert!(!s.try_exists(&url).unwrap());
        // A folder where a file is: the OS's words, and what to check.
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let under = dir.path().join("file/x.txt").to_string_lossy().to_string();
        let e = s.write(&under, b"x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{under}: writing failed: ")),
            "{e}"
        );
        assert_eq!(
            e.hint(),
            Some("check that the output folder can be created and written to")
        );
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn local_records_carry_no_etag_or_version() {
        let s = Store::new();
        s.put_memory("a.csv", b"abc".to_vec());
        let json = serde_json::to_string(&s.record("memory://a.csv").unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"url":"memory://a.csv","size":3,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#
        );
    }

    #[test]
    fn remote_urls_name_their_bucket() {
        let at = parse_remote("s3://bucket/logs/2025-01/a.parquet").unwrap();
        assert_eq!(at.base, "s3://bucket");
        assert_eq!(at.path.as_ref(), "logs/2025-01/a.parquet");
        let at = parse_remote("gs://b/x%20y.csv").unwrap();
        assert_eq!((at.base.as_str(), at.path.as_ref()), ("gs://b", "x y.csv"));
        let at = parse_remote("abfss://data@acct.dfs.core.windows.net/bills/f.csv").unwrap();
        assert_eq!(at.base, "abfss://data@acct.dfs.core.windows.net");
        assert_eq!(at.path.as_ref(), "bills/f.csv");
        let e = parse_remote("s3://user:pw@bucket/f.csv").unwrap_err();
        assert!(e.to_string().contains("credentials"), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
        let at = parse_remote("az://container/bills/f.csv").unwrap();
        assert_eq!(at.base, "az://container");
        let at = parse_remote("https://acct.blob.core.windows.net/container/bills/f.csv").unwrap();
        assert_eq!(at.base, "https://acct.blob.core.windows.net/container");
        assert_eq!(at.path.as_ref(), "bills/f.csv");
        let at = parse_remote("https://example.com/exports/f.csv").unwrap();
        assert_eq!(at.base, "https://example.com");
        assert_eq!(at.path.as_ref(), "exports/f.csv");
        let e = parse_remote("https://acct.blob.core.windows.net/c/f.csv?sig=abc").unwrap_err();
        assert!(e.to_string().contains("query string"), "{e}");
        assert!(!e.to_string().contains("abc"));
        assert!(is_remote("S3://b/k") && !is_remote("fixtures/a.csv"));
    }

    #[test]
    fn storage_options_are_checked_by_name() {
        #[derive(Deserialize)]
        struct P {
            storage: StorageOptions,
        }
        let p: P = toml::from_str(
            "[storage]\nmax_retries = 2\n[storage.s3]\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true\n",
        )
        .unwrap();
        assert_eq!(p.storage.max_retries, Some(2));
        assert_eq!(p.storage.s3["allow_http"], "true");
        let e = toml::from_str::<P>("[storage.s3]\nendpiont = \"x\"\n")
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("unknown [storage.s3] option `endpiont`"),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_masked_in_errors() {
        let mut o = StorageOptions::default();
        o.s3.insert("secret_access_key".into(), "TOPSECRET-123".into());
        o.s3.insert("access_key_id".into(), "AKIDPUBLIC".into());
        o.s3.insert("region".into(), "eu-west-1".into());
        let s = secrets(&o, &[]);
        assert!(s.contains(&"TOPSECRET-123".to_string()));
        assert!(!s.contains(&"AKIDPUBLIC".to_string()));
        let e = redact_error(Error::storage("s3://b/k", "denied for TOPSECRET-123"), &s);
        assert_eq!(e.to_string(), "s3://b/k: denied for ****");
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn built(url: &str, options: &StorageOptions, vars: &[(&str, &str)]) -> String {
        let at = parse_remote(url).unwrap();
        match build_client(&at, options, &env(vars)) {
            Ok(store) => store.to_string(),
            Err(Setup::Store(e)) => panic!("{url}: {e}"),
            Err(Setup::Ours { message, .. }) => panic!("{url}: {message}"),
        }
    }

    /// Base64 of `not-a-real-azure-account-key!!`.
    const AZURE_KEY: &str = "bm90LWEtcmVhbC1henVyZS1hY2NvdW50LWtleSEh";
    const SAS: &str =
        "sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&sig=Zm9vYmFy%2BcXV4%3D";

    #[test]
    fn every_cloud_url_builds_its_store_without_the_network() {
        let none = StorageOptions::default();
        let aws = [
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
            ("AWS_REGION", "eu-central-1"),
        ];
        assert_eq!(
            built("s3://finance/llm/x.csv", &none, &aws),
            "AmazonS3(finance)"
        );
        assert_eq!(
            built("s3a://finance/x.csv", &none, &aws),
            "AmazonS3(finance)"
        );
        assert_eq!(
            built(
                "https://finance.s3.eu-central-1.amazonaws.com/x.csv",
                &none,
                &[]
            ),
            "AmazonS3(finance)"
        );

        // GCS: application default credentials (an `authorized_user` file),
        // or no credentials at all until the first request needs them.
        let dir = tempfile::tempdir().unwrap();
        let adc = dir.path().join("adc.json");
        std::fs::write(
            &adc,
            r#"{"type":"authorized_user","client_id":"id.apps.googleusercontent.com","client_secret":"gcp-client-secret","refresh_token":"gcp-refresh-token"}"#,
        )
        .unwrap();
        let gcp = [("GOOGLE_APPLICATION_CREDENTIALS", adc.to_str().unwrap())];
        assert_eq!(
            built("gs://finance/llm/x.csv", &none, &gcp),
            "GoogleCloudStorage(finance)"
        );
        assert_eq!(
            built("gs://finance/x.csv", &none, &[]),
            "GoogleCloudStorage(finance)"
        );

        // Azure: account and key, or account and SAS, from the environment
        // or from [storage.azure]; every URL form names the container.
        let key = [
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", AZURE_KEY),
        ];
        let sas = [
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_SAS_KEY", SAS),
        ];
        let azure = "MicrosoftAzure { account: acct, container: data }";
        assert_eq!(built("az://data/bills/f.csv", &none, &key), azure);
        assert_eq!(built("azure://data/bills/f.csv", &none, &sas), azure);
        assert_eq!(
            built(
                "abfss://data@acct.dfs.core.windows.net/bills/f.csv",
                &none,
                &sas
            ),
            azure
        );
        assert_eq!(
            built("abfs://data@acct.dfs.core.windows.net/f.csv", &none, &key),
            azure
        );
        assert_eq!(
            built(
                "https://acct.blob.core.windows.net/data/bills/f.csv",
                &none,
                &key
            ),
            azure
        );
        let mut o = StorageOptions::default();
        o.azure.insert("account_name".into(), "acct".into());
        o.azure.insert("sas_key".into(), SAS.into());
        assert_eq!(built("az://data/bills/f.csv", &o, &[]), azure);
        // The account from the URL itself.
        let key_only = [("AZURE_STORAGE_ACCOUNT_KEY", AZURE_KEY)];
        assert_eq!(
            built(
                "abfss://data@acct.dfs.core.windows.net/f.csv",
                &none,
                &key_only
            ),
            azure
        );
        assert_eq!(
            built(
                "https://acct.blob.core.windows.net/data/f.csv",
                &none,
                &key_only
            ),
            azure
        );
        // The emulator, plain HTTP by design.
        let emulator = [("AZURE_STORAGE_USE_EMULATOR", "true")];
        assert_eq!(
            built("az://data/f.csv", &none, &emulator),
            "MicrosoftAzure { account: devstoreaccount1, container: data }"
        );

        assert_eq!(
            built("https://example.com/exports/catalog.json", &none, &[]),
            "HttpStore"
        );
    }

    /// The error a store's setup or first request gives, through the store.
    fn read_error(store: &Store, url: &str) -> Error {
        store.read(url).unwrap_err()
    }

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn setup_errors_say_what_to_set_and_never_print_the_secret() {
        // Azure without an account.
        let store = Store::with_env(env(&[("AZURE_STORAGE_ACCOUNT_KEY", AZURE_KEY)]));
        let e = read_error(&store, "az://data/f.csv");
        assert_eq!(
            e.report(),
            "error: az://data/f.csv: cannot set up the store: Account must be specified\n\
             hint: set AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or \
             AZURE_STORAGE_SAS_KEY, or the options of [storage.azure]\n"
        );
        assert_eq!(e.exit_code(), 3);

        // An account key that is not one.
        let bad_key = "this-is-not-base64-SECRET";
        let store = Store::with_env(env(&[
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", bad_key),
        ]));
        let e = read_error(&store, "az://data/f.csv");
        assert!(
            e.report()
                .starts_with("error: az://data/f.csv: cannot set up the store: ")
        );
        assert!(!e.report().contains("SECRET"), "{}", e.report());

        // A GCS service-account key whose private key is not one.
        // Its newlines escaped twice, a common slip: the PEM parser quotes
        // the whole line, as bytes.
        let key = r#"{"private_key":"-----BEGIN PRIVATE KEY-----\\nGCPSECRET\\n-----END PRIVATE KEY-----\\n","client_email":"x@y.iam.gserviceaccount.com","private_key_id":"kid"}"#;
        let mut o = StorageOptions::default();
        o.gcs.insert("service_account_key".into(), key.into());
        let store = Store::with_env(Vec::new());
        store.configure(&o).unwrap();
        let e = read_error(&store, "gs://finance/f.csv");
        assert_eq!(
            e.to_string(),
            "gs://finance/f.csv: cannot set up the store: Error reading pem file: illegal section \
             start: [bytes not shown]"
        );
        assert_eq!(
            without_byte_lists("a [1, 2] [71, 67, 80, 83] [x, y, z, w] ["),
            "a [1, 2] [bytes not shown] [x, y, z, w] ["
        );

        // An option the store does not know, in [storage.s3]: caught when
        // the policy is read, but a bad value reaches the store.
        let mut o = StorageOptions::default();
        o.s3.insert("secret_access_key".into(), "S3-OPTION-SECRET".into());
        let store = Store::with_env(Vec::new());
        store.configure(&o).unwrap();
        let e = read_error(&store, "s3://finance/f.csv");
        assert_eq!(
            e.report(),
            "error: s3://finance/f.csv: cannot set up the store: Missing AccessKeyId\n\
             hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION; \
             AWS_ENDPOINT_URL for an S3-compatible store), or the options of [storage.s3]\n"
        );
        o.s3.insert("access_key_id".into(), "AKIAEXAMPLE".into());
        o.s3.insert("allow_http".into(), "maybe".into());
        let store = Store::with_env(Vec::new());
        store.configure(&o).unwrap();
        let e = read_error(&store, "s3://finance/f.csv");
        assert_eq!(
            e.to_string(),
            "s3://finance/f.csv: cannot set up the store: failed to parse \"maybe\" as boolean"
        );
    }

    #[test]
    fn a_plain_http_endpoint_must_be_allowed() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "minioadmin"),
            ("AWS_SECRET_ACCESS_KEY", "minioadmin"),
        ];
        let e = read_error(&Store::with_env(env(&vars)), "s3://finance/f.csv");
        assert_eq!(
            e.report(),
            "error: s3://finance/f.csv: the endpoint `http://127.0.0.1:9000` is plain HTTP, \
             which is off unless allowed\n\
             hint: set AWS_ALLOW_HTTP=true (or `allow_http = true` in [storage.s3]) for a store \
             on a trusted network, or give an `https://` endpoint\n"
        );
        assert!(!e.report().contains("minioadmin"));
        let mut allowed = env(&vars);
        allowed.push(("AWS_ALLOW_HTTP".into(), "true".into()));
        let at = parse_remote("s3://finance/f.csv").unwrap();
        assert!(build_client(&at, &StorageOptions::default(), &allowed).is_ok());
        let mut o = StorageOptions::default();
        o.s3.insert("allow_http".into(), "true".into());
        assert!(build_client(&at, &o, &env(&vars)).is_ok());
    }

    #[test]
    fn request_errors_name_the_url_and_mask_credentials() {
        let port = closed_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut o = StorageOptions {
            max_retries: Some(1),
            retry_timeout_seconds: Some(5),
            ..StorageOptions::default()
        };
        o.azure.insert("endpoint".into(), endpoint.clone());
        o.azure.insert("allow_http".into(), "true".into());
        // Azure with a SAS token: the request's URL carries it, so it is
        // never printed, whatever its encoding.
        let store = Store::with_env(env(&[
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_SAS_KEY", SAS),
        ]));
        store.configure(&o).unwrap();
        let e = read_error(&store, "az://data/bills/f.csv");
        let text = e.report();
        assert!(
            text.starts_with(
                "error: az://data/bills/f.csv: reading failed after 1 retry: GET REDACTED: \
                 error sending request"
            ),
            "{text}"
        );
        assert!(text.contains("Connection refused"), "{text}");
        assert!(text.ends_with(
            "\nhint: transient errors (5xx, 429, resets, timeouts) are retried up to 1 time; \
             check that the store is reachable, or raise [storage] max_retries\n"
        ));
        for part in ["Zm9vYmFy", "cXV4", "sig="] {
            assert!(!text.contains(part), "{text}");
        }
        assert_eq!(e.exit_code(), 3);

        // S3 with the secret in the policy: the endpoint is named, the
        // secret is not.
        let mut o = StorageOptions {
            max_retries: Some(0),
            ..StorageOptions::default()
        };
        o.s3.insert("endpoint".into(), endpoint.clone());
        o.s3.insert("allow_http".into(), "true".into());
        o.s3.insert("access_key_id".into(), "AKIAEXAMPLE".into());
        o.s3.insert("secret_access_key".into(), "S3-OPTION-SECRET".into());
        let store = Store::with_env(Vec::new());
        store.configure(&o).unwrap();
        let e = read_error(&store, "s3://finance/llm/f.csv");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "s3://finance/llm/f.csv: reading failed: GET {endpoint}/finance/llm/f.csv: \
                 error sending request"
            )),
            "{text}"
        );
        assert!(!text.contains("S3-OPTION-SECRET"));
        // Listing and writing say so.
        let e = store.list("s3://finance/llm/*.csv").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("s3://finance/llm/: listing failed: GET "),
            "{e}"
        );
        let e = store.write("s3://finance/out/a.csv", b"x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("s3://finance/out/a.csv: writing failed: PUT "),
            "{e}"
        );
    }

    #[test]
    fn store_messages_are_condensed_to_the_request_and_the_answer() {
        assert_eq!(
            condense(
                "Generic S3 error: Error performing PUT http://127.0.0.1:9000/b/k in 12.5ms, \
                 after 2 retries, max_retries: 2, retry_timeout: 10s - Server returned non-2xx \
                 status code: 500 Internal Server Error: <?xml version=\"1.0\" \
                 encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered \
                 an internal error</Message></Error>"
            ),
            "PUT http://127.0.0.1:9000/b/k: 500 Internal Server Error: InternalError: We \
             encountered an internal error (after 2 retries)"
        );
        assert_eq!(
            condense(
                "The operation lacked the necessary privileges to complete for path k: Error \
                 performing GET https://acct.blob.core.windows.net/c/k in 80ms - Server returned \
                 non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>\
                 AuthenticationFailed</Code><Message>Server failed to authenticate the request. \
                 RequestId:1b2c Time:2025-02-01T00:00:00Z</Message></Error>"
            ),
            "GET https://acct.blob.core.windows.net/c/k: 403 Forbidden: AuthenticationFailed: \
             Server failed to authenticate the request."
        );
        assert_eq!(
            condense(
                "Generic GCS error: Error performing GET https://storage.googleapis.com/b/k in \
                 1s - Server returned non-2xx status code: 401 Unauthorized: {\"error\": \
                 {\"code\": 401, \"message\": \"Invalid Credentials\"}}"
            ),
            "GET https://storage.googleapis.com/b/k: 401 Unauthorized: Invalid Credentials"
        );
        assert_eq!(
            condense("Generic MicrosoftAzure error: Account must be specified"),
            "Account must be specified"
        );
        assert_eq!(
            condense("something else: entirely"),
            "something else: entirely"
        );
        assert_eq!(retries_of("x (after 3 retries)"), Some(3));
        assert_eq!(message_without_retries("x (after 3 retries)"), "x");
    }

    #[test]
    fn a_sas_signature_is_masked_however_it_is_encoded() {
        let s = secrets(
            &StorageOptions::default(),
            &env(&[
                ("AZURE_STORAGE_SAS_KEY", SAS),
                ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ]),
        );
        assert!(s.contains(&SAS.to_string()));
        assert!(s.contains(&"Zm9vYmFy+cXV4=".to_string()), "{s:?}");
        assert!(s.contains(&"Zm9vYmFy%2BcXV4%3D".to_string()), "{s:?}");
        assert!(!s.contains(&"acct".to_string()));
        let e = redact_error(
            Error::storage(
                "az://c/k",
                "denied: sig=Zm9vYmFy+cXV4= and Zm9vYmFy%2BcXV4%3D",
            ),
            &s,
        );
        assert_eq!(e.to_string(), "az://c/k: denied: sig=**** and ****");
    }

    /// A store whose `s3://bucket` is served by `object_store`'s in-memory
    /// store, holding these objects.
    fn bucket_with(objects: &[(&str, usize)], spool_above_mb: u64) -> Store {
        let bucket = object_store::memory::InMemory::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (key, size) in objects {
            let bytes: Vec<u8> = (0..*size).map(|i| b"0123456789,\n"[i % 12]).collect();
            rt.block_on(bucket.put(&ObjectPath::from(*key), bytes.into()))
                .unwrap();
        }
        let store = Store::new();
        store
            .configure(&StorageOptions {
                spool_above_mb: Some(spool_above_mb),
                ..StorageOptions::default()
            })
            .unwrap();
        store
            .state()
            .clients
            .insert("s3://bucket".into(), Arc::new(bucket));
        store
    }

    fn spooled(sources: &ScanSources) -> Option<PathBuf> {
        match sources {
            ScanSources::Paths(p) => Some(PathBuf::from(p[0].as_str())),
            ScanSources::Buffers(_) => None,
            ScanSources::Files(_) => panic!("neither a path nor a buffer"),
        }
    }

    #[test]
    fn large_objects_are_spooled_to_disk_and_small_ones_kept_in_memory() {
        const MB: usize = 1 << 20;
        let store = bucket_with(&[("big.csv", 3 * MB / 2), ("small.csv", 1000)], 1);
        let small = store.scan_sources("s3://bucket/small.csv").unwrap();
        assert_eq!(spooled(&small), None, "in memory");
        let big = store.scan_sources("s3://bucket/big.csv").unwrap();
        let path = spooled(&big).expect("spooled");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 3 * MB / 2);
        let record = store.record("s3://bucket/big.csv").unwrap();
        assert_eq!(record.size, (3 * MB / 2) as u64);
        assert_eq!(record.sha256, hex::encode(Sha256::digest(&bytes)));
        assert!(record.etag.is_some());
        // Read once: the scan, the record and a second scan share it.
        assert_eq!(
            spooled(&store.scan_sources("s3://bucket/big.csv").unwrap()),
            Some(path.clone())
        );
        // The spool goes with the store.
        drop((small, big));
        drop(store);
        assert!(!path.exists(), "{} left behind", path.display());
    }

    #[test]
    fn memory_holds_at_most_spool_above_mb_of_objects() {
        const KB: usize = 1 << 10;
        let store = bucket_with(
            &[
                ("a.csv", 400 * KB),
                ("b.csv", 400 * KB),
                ("c.csv", 400 * KB),
            ],
            1,
        );
        let where_ = |k: &str| spooled(&store.scan_sources(&format!("s3://bucket/{k}")).unwrap());
        assert_eq!(where_("a.csv"), None);
        assert_eq!(where_("b.csv"), None);
        assert!(
            where_("c.csv").is_some(),
            "the third would pass 1 MiB in memory"
        );
        // With 0, everything goes to disk.
        let store = bucket_with(&[("a.csv", 10)], 0);
        assert!(spooled(&store.scan_sources("s3://bucket/a.csv").unwrap()).is_some());
    }
}

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

const MISSING_HINT: &str = "check the path in [sources] and the `--period` it was expanded with";

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
    /// A manifest to pin to once the policy's options are known.
    pending_pins: Option<String>,
    pins_loaded: bool,
    /// Remote objects already read: their record and where their bytes are.
    fetched: BTreeMap<String, Fetched>,
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
            Error::input(Location::file(url), "no such file").with_hint(MISSING_HINT)
        }
        _ => Error::storage(url, e.to_string()),
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

/// The URL of an object listed under `base`.
fn object_url(base: &str, location: &ObjectPath) -> String {
    format!("{base}/{location}")
}

impl Store {
    pub fn new() -> Store {
        Store::default()
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
        let text = self.read_text(url)?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::input(Location::file(url), format!("not a manifest: {e}"))
                .with_hint("give `--pin-manifest` the manifest.json of a published month")
        })?;
        let mut pins = BTreeMap::new();
        let records = v["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .chain([&v["catalog"]]);
        for r in records {
            let record: ObjectRecord = serde_json::from_value(r.clone()).map_err(|e| {
                Error::input(Location::file(url), format!("not a manifest: {e}"))
                    .with_hint("give `--pin-manifest` the manifest.json of a published month")
            })?;
            pins.insert(record.url.clone(), record);
        }
        let mut st = self.state();
        st.pins = pins;
        st.pins_loaded = true;
        Ok(())
    }

    fn pin(&self, url: &str) -> Option<ObjectRecord> {
        self.state().pins.get(url).cloned()
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
                    let p = entry.map_err(|e| Error::storage(pattern, e.to_string()))?;
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
                    .with_hint(MISSING_HINT),
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
                Body::Spooled(path) => std::fs::read(&path)
                    .map(Arc::from)
                    .map_err(|e| Error::storage(url, format!("reading the spooled copy: {e}"))),
            },
        }
    }

    /// Reads a text object (a policy, a catalog).
    pub fn read_text(&self, url: &str) -> Result<String> {
        let bytes = self.read(url)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::input(Location::file(url), "the file is not UTF-8 text"))
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
        let pinned = self.pin(url).map(|p| p.sha256);
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
        let buffer_source = |bytes: &[u8]| {
            ScanSources::Buffers(
                [polars_buffer::Buffer::from(bytes.to_vec())]
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
            Target::Memory(_) => Ok(buffer_source(&self.read(url)?)),
            Target::Remote => match self.fetch(url)?.body {
                Body::Memory(bytes) => Ok(buffer_source(&bytes)),
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
                let err = |e: std::io::Error| Error::storage(url, e.to_string());
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let tmp = tmp_name(&path);
                std::fs::write(&tmp, bytes).map_err(err)?;
                std::fs::rename(&tmp, &path).map_err(err)
            }
            Target::Remote => {
                let at = parse_remote(url)?;
                let store = self.client(&at, url)?;
                let payload = PutPayload::from(bytes.to_vec());
                self.block_on(store.put(&at.path, payload))
                    .map(|_| ())
                    .map_err(|e| self.remote_error(url, "writing", e))
            }
        }
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
                Err(e) => Err(Error::storage(url, e.to_string())),
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

    /// Whether an object exists; a store that cannot tell says no.
    pub fn exists(&self, url: &str) -> bool {
        self.try_exists(url).unwrap_or(false)
    }

    /// Whether an object exists, or why the store cannot tell.
    pub fn try_exists(&self, url: &str) -> Result<bool> {
        match target(url) {
            Target::Memory(key) => Ok(self
                .memory
                .lock()
                .expect("memory store lock")
                .contains_key(key)),
            Target::Local(path) => Ok(path.is_file()),
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
        let secrets = secrets(&self.state().options);
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
        let spool_above = self
            .state()
            .options
            .spool_above_mb
            .unwrap_or(DEFAULT_SPOOL_ABOVE_MB)
            .saturating_mul(1 << 20);
        let result = self
            .block_on(store.get_opts(&at.path, options))
            .map_err(|e| self.remote_error(url, "reading", e))?;
        let spool = match result.meta.size > spool_above {
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
            return Err(self.redacted(Error::storage(
                url,
                format!(
                    "reading: got {size} bytes of an object of {} bytes",
                    meta.size
                ),
            )));
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
                    .map_err(|e| Error::storage(url, format!("creating a spool folder: {e}")))?;
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
        let built = build_client(at, &st.options);
        let client = built.map_err(|e| {
            let message = clean_message(&e.to_string());
            let secrets = secrets(&st.options);
            redact_error(
                Error::storage(url, format!("cannot set up the store: {message}"))
                    .with_hint(credentials_hint(&at.scheme)),
                &secrets,
            )
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
        let message = clean_message(&e.to_string());
        let (retries, scheme) = {
            let st = self.state();
            let retries = st
                .options
                .max_retries
                .unwrap_or(RetryConfig::default().max_retries);
            let scheme = parse_remote(url).map(|a| a.scheme).ok();
            (retries, scheme)
        };
        let err = match &e {
            object_store::Error::NotFound { .. } => {
                Error::input(Location::file(url), "no such file").with_hint(MISSING_HINT)
            }
            object_store::Error::Precondition { .. } => Error::input(
                Location::file(url),
                "the object changed since the pinned manifest was written",
            )
            .with_hint("its ETag no longer matches; restore it, or rerun without `--pin-manifest`"),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                Error::storage(url, format!("{doing}: access denied: {message}")).with_hint(
                    scheme
                        .as_ref()
                        .map(credentials_hint)
                        .unwrap_or("check the store's credentials"),
                )
            }
            _ => Error::storage(url, format!("{doing} failed: {message}")).with_hint(format!(
                "transient errors (5xx, resets, timeouts) were retried up to {retries} times; \
                 check that the store is reachable, or raise [storage] max_retries"
            )),
        };
        self.redacted(err)
    }

    fn redacted(&self, e: Error) -> Error {
        let secrets = secrets(&self.state().options);
        redact_error(e, &secrets)
    }
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

fn build_client(
    at: &RemoteUrl,
    options: &StorageOptions,
) -> std::result::Result<Arc<dyn ObjectStore>, object_store::Error> {
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
            let mut b = AmazonS3Builder::from_env()
                .with_url(at.base.clone())
                .with_retry(retry);
            if let Some(t) = &timeout {
                b = b.with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), t);
            }
            for (k, v) in &options.s3 {
                b = b.with_config(k.parse()?, v);
            }
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_url(at.base.clone())
                .with_retry(retry);
            if let Some(t) = &timeout {
                b = b.with_config(GoogleConfigKey::Client(ClientConfigKey::Timeout), t);
            }
            for (k, v) in &options.gcs {
                b = b.with_config(k.parse()?, v);
            }
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(at.base.clone())
                .with_retry(retry);
            if let Some(t) = &timeout {
                b = b.with_config(AzureConfigKey::Client(ClientConfigKey::Timeout), t);
            }
            for (k, v) in &options.azure {
                b = b.with_config(k.parse()?, v);
            }
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
            return Err(object_store::Error::NotSupported {
                source: "this URL scheme".into(),
            });
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
fn secrets(options: &StorageOptions) -> Vec<String> {
    let mut out: Vec<String> = std::env::vars()
        .filter(|(k, _)| {
            (k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_"))
                && is_secret_name(k)
        })
        .map(|(_, v)| v)
        .collect();
    for map in [&options.s3, &options.gcs, &options.azure] {
        out.extend(
            map.iter()
                .filter(|(k, _)| is_secret_name(k))
                .map(|(_, v)| v.clone()),
        );
    }
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
        assert!(s.exists(&url));
        assert!(!Path::new(&format!("{url}.partial")).exists());
        assert_eq!(&*s.read(&url).unwrap(), b"hello");
        s.delete(&url).unwrap();
        assert!(!s.exists(&url));
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
        let s = secrets(&o);
        assert!(s.contains(&"TOPSECRET-123".to_string()));
        assert!(!s.contains(&"AKIDPUBLIC".to_string()));
        let e = redact_error(Error::storage("s3://b/k", "denied for TOPSECRET-123"), &s);
        assert_eq!(e.to_string(), "s3://b/k: denied for ****");
    }
}

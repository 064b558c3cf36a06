//! Where bytes come from and go to: local paths, `file://` and `memory://`.
//!
//! Every read and write of the run goes through a [`Store`], so tests can
//! hand the pipeline an in-memory store and an auditor's rerun can record
//! exactly what was read (size and sha256 of every object).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polars::prelude::{PlRefPath, ScanSources};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};

const MEMORY: &str = "memory://";

/// What a run read: enough for an auditor to check the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRecord {
    pub url: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default)]
pub struct Store {
    memory: Arc<Mutex<BTreeMap<String, Arc<[u8]>>>>,
}

enum Target<'a> {
    Local(PathBuf),
    Memory(&'a str),
}

fn target(url: &str) -> Target<'_> {
    if let Some(key) = url.strip_prefix(MEMORY) {
        Target::Memory(key)
    } else if let Some(path) = url.strip_prefix("file://") {
        Target::Local(PathBuf::from(path))
    } else {
        Target::Local(PathBuf::from(url))
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn io_error(url: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(Location::file(url), "no such file")
            .with_hint("check the path in [sources] and the `--period` it was expanded with"),
        _ => Error::storage(url, e.to_string()),
    }
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

    /// The URLs a source pattern names, sorted. A pattern without glob
    /// characters names itself (whether it exists is found on read); a glob
    /// that matches nothing is an error.
    pub fn list(&self, pattern: &str) -> Result<Vec<String>> {
        if !has_glob(pattern) {
            return Ok(vec![pattern.to_string()]);
        }
        let mut urls = match target(pattern) {
            Target::Memory(key) => {
                let pat = glob::Pattern::new(key).map_err(|e| {
                    Error::input(Location::file(pattern), format!("bad glob pattern: {e}"))
                })?;
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
                let entries = glob::glob(&path.to_string_lossy()).map_err(|e| {
                    Error::input(Location::file(pattern), format!("bad glob pattern: {e}"))
                })?;
                let mut urls = Vec::new();
                for entry in entries {
                    let p = entry.map_err(|e| Error::storage(pattern, e.to_string()))?;
                    if p.is_file() {
                        urls.push(format!("{prefix}{}", p.to_string_lossy()));
                    }
                }
                urls
            }
        };
        urls.sort();
        if urls.is_empty() {
            return Err(
                Error::input(Location::file(pattern), "the pattern matches no file").with_hint(
                    "check the path in [sources] and the `--period` it was expanded with",
                ),
            );
        }
        Ok(urls)
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
        }
    }

    /// Reads a text object (a policy, a catalog).
    pub fn read_text(&self, url: &str) -> Result<String> {
        let bytes = self.read(url)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::input(Location::file(url), "the file is not UTF-8 text"))
    }

    /// Size and sha256 of an object, streamed for local files.
    pub fn record(&self, url: &str) -> Result<ObjectRecord> {
        let mut hasher = Sha256::new();
        let size = match target(url) {
            Target::Memory(_) => {
                let bytes = self.read(url)?;
                hasher.update(&bytes);
                bytes.len() as u64
            }
            Target::Local(path) => {
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
                size
            }
        };
        Ok(ObjectRecord {
            url: url.to_string(),
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// What Polars should scan for an object: the path itself for local
    /// files (so it can stream and memory-map), the bytes otherwise.
    pub fn scan_sources(&self, url: &str) -> Result<ScanSources> {
        match target(url) {
            Target::Local(path) => {
                if !path.is_file() {
                    return Err(io_error(url, std::io::ErrorKind::NotFound.into()));
                }
                Ok(ScanSources::Paths(
                    [PlRefPath::new(path.to_string_lossy().as_ref())]
                        .into_iter()
                        .collect(),
                ))
            }
            Target::Memory(_) => {
                let bytes = self.read(url)?;
                Ok(ScanSources::Buffers(
                    [polars_buffer::Buffer::from(bytes.to_vec())]
                        .into_iter()
                        .collect(),
                ))
            }
        }
    }

    /// Writes an object whole: a local file appears under its name only
    /// once complete (written beside it, then renamed).
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
        }
    }

    /// Whether an object exists.
    pub fn exists(&self, url: &str) -> bool {
        match target(url) {
            Target::Memory(key) => self
                .memory
                .lock()
                .expect("memory store lock")
                .contains_key(key),
            Target::Local(path) => path.is_file(),
        }
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
}

//! A small harness: a temp folder holding copies of fixtures, and the real
//! binary run inside it.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct TestDir {
    dir: tempfile::TempDir,
}

pub(crate) struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit code, stdout and stderr in one text, for snapshots.
    pub(crate) fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl TestDir {
    pub(crate) fn new() -> TestDir {
        TestDir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A temp folder with `fixtures/<name>` copied to the same place.
    pub(crate) fn with_fixture(name: &str) -> TestDir {
        let t = TestDir::new();
        t.copy_fixture(name);
        t
    }

    pub(crate) fn copy_fixture(&self, name: &str) {
        let rel = Path::new("fixtures").join(name);
        copy_dir(&repo_root().join(&rel), &self.path().join(&rel));
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel))
            .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub(crate) fn read_bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    /// Runs `chargeback ARGS` in this folder.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_chargeback"))
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("running chargeback");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Every file under `rel`, as sorted relative paths.
    pub(crate) fn files(&self, rel: &str) -> Vec<String> {
        let root = self.path().join(rel);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(
                p.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A team's `usage_cost` in a month's `invoices.json`.
pub(crate) fn usage_cost(month: &serde_json::Value, team: &str) -> String {
    month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == team)
        .unwrap_or_else(|| panic!("no invoice for {team}"))["usage_cost"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A month closed in memory by the stages the binary runs — load, compute
/// and the data outputs of render (no documents are typeset) — from the
/// policy at `memory://policy.toml`.
pub(crate) struct Closed {
    pub outputs: chargeback::publish::Outputs,
    pub view: chargeback::compute::invoice::MonthView,
}

pub(crate) fn close_in_memory(ctx: &chargeback::context::Context, period: &str) -> Closed {
    use chargeback::load::{load, read_policy};
    let fail = |e: chargeback::error::Error| -> ! { panic!("{}", e.report()) };
    let policy = read_policy(ctx, "memory://policy.toml").unwrap_or_else(|e| fail(e));
    let inputs =
        load(ctx, &policy.policy, period.parse().unwrap(), None).unwrap_or_else(|e| fail(e));
    let month =
        chargeback::compute::compute(&inputs, &policy.policy, None).unwrap_or_else(|e| fail(e));
    Closed {
        outputs: chargeback::render::data_outputs(&month),
        view: month.view,
    }
}

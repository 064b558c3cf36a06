//! Object storage end to end: the real binary against a real S3 protocol
//! server (s3s over a temporary folder) that each test starts on loopback.
//! The server adds what a folder cannot give — object versions — and
//! injects faults (5xx answers) on request, so retries, exit 3 and the
//! "no manifest after a failed publish" rule are tested over the wire.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use s3s::dto::{
    GetObjectInput, GetObjectOutput, HeadObjectInput, HeadObjectOutput, ListObjectsV2Input,
    ListObjectsV2Output, PutObjectInput, PutObjectOutput, StreamingBlob,
};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Request, S3Response, S3Result};
use serde_json::Value;

use crate::util::{Output, TestDir, copy_dir, repo_root};

const BUCKET: &str = "ledger";
const ACCESS_KEY: &str = "AKIACHARGEBACKTEST";
/// Recognisable, so a test can prove it is printed nowhere.
const SECRET: &str = "s3cr3t-CHARGEBACK-9f1c2e7d";

/// Which requests the server answers with `500 InternalError`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Faults {
    None,
    /// Every fifth request, whatever it is.
    EveryFifth,
    /// Every write of an object whose key ends so.
    PutsEndingWith(&'static str),
    /// Access denied (403) to every request for a path that starts so (a
    /// folder the run's credentials may not read).
    DenyUnder(&'static str),
}

struct FaultState {
    mode: Mutex<Faults>,
    requests: AtomicUsize,
    /// Faults injected into reads (`GET`, `HEAD`) and into writes.
    injected_reads: AtomicUsize,
    injected_writes: AtomicUsize,
}

struct Version {
    id: String,
    bytes: hyper::body::Bytes,
    e_tag: Option<s3s::dto::ETag>,
    modified: std::time::SystemTime,
}

/// s3s-fs with object versions: each put is kept under a version id, a
/// get or head names the current one, and a get may ask for an old one.
struct Versioned {
    fs: s3s_fs::FileSystem,
    versions: Mutex<HashMap<(String, String), Vec<Version>>>,
    next: AtomicUsize,
}

#[async_trait::async_trait]
impl S3 for Versioned {
    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let mut body = req.input.body.take().expect("a put has a body");
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.map_err(|_| s3s::s3_error!(IncompleteBody))?);
        }
        let bytes = hyper::body::Bytes::from(bytes);
        req.input.body = Some(StreamingBlob::from(s3s::Body::from(bytes.clone())));
        let key = (req.input.bucket.clone(), req.input.key.clone());
        let mut resp = self.fs.put_object(req).await?;
        let id = format!("v{:04}", self.next.fetch_add(1, Ordering::SeqCst) + 1);
        self.versions
            .lock()
            .unwrap()
            .entry(key)
            .or_default()
            .push(Version {
                id: id.clone(),
                bytes,
                e_tag: resp.output.e_tag.clone(),
                // A fixed time: nothing under test reads it.
                modified: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_735_689_600),
            });
        resp.output.version_id = Some(id);
        Ok(resp)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let key = (req.input.bucket.clone(), req.input.key.clone());
        if let Some(id) = req.input.version_id.clone() {
            let versions = self.versions.lock().unwrap();
            let Some(v) = versions
                .get(&key)
                .and_then(|vs| vs.iter().find(|v| v.id == id))
            else {
                return Err(s3s::s3_error!(NoSuchVersion));
            };
            return Ok(S3Response::new(GetObjectOutput {
                content_length: Some(i64::try_from(v.bytes.len()).unwrap()),
                body: Some(StreamingBlob::from(s3s::Body::from(v.bytes.clone()))),
                e_tag: v.e_tag.clone(),
                last_modified: Some(s3s::dto::Timestamp::from(v.modified)),
                version_id: Some(id),
                ..Default::default()
            }));
        }
        let current = self.current(&key);
        let mut resp = self.fs.get_object(req).await?;
        resp.output.version_id = current;
        Ok(resp)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let current = self.current(&(req.input.bucket.clone(), req.input.key.clone()));
        let mut resp = self.fs.head_object(req).await?;
        resp.output.version_id = current;
        Ok(resp)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<s3s::dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<s3s::dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<s3s::dto::DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }
}

impl Versioned {
    fn current(&self, key: &(String, String)) -> Option<String> {
        let versions = self.versions.lock().unwrap();
        versions
            .get(key)
            .and_then(|vs| vs.last())
            .map(|v| v.id.clone())
    }
}

/// The S3 service behind a fault injector.
#[derive(Clone)]
struct Faulty {
    inner: S3Service,
    faults: Arc<FaultState>,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<s3s::HttpResponse, s3s::HttpError>> + Send + 'static>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Faulty {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = ServiceFuture;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let write = matches!(
            *req.method(),
            hyper::Method::PUT | hyper::Method::POST | hyper::Method::DELETE
        );
        let n = self.faults.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = match *self.faults.mode.lock().unwrap() {
            Faults::None => false,
            Faults::EveryFifth => n.is_multiple_of(5),
            Faults::PutsEndingWith(end) => {
                req.method() == hyper::Method::PUT && req.uri().path().ends_with(end)
            }
            Faults::DenyUnder(prefix) => {
                if req.uri().path().starts_with(prefix) {
                    let resp = hyper::Response::builder()
                        .status(403)
                        .header("content-type", "application/xml")
                        .body(s3s::Body::from(
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                             <Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
                                .to_string(),
                        ))
                        .unwrap();
                    return Box::pin(async move { Ok(resp) });
                }
                false
            }
        };
        if fail {
            match write {
                true => &self.faults.injected_writes,
                false => &self.faults.injected_reads,
            }
            .fetch_add(1, Ordering::SeqCst);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                <Error><Code>InternalError</Code><Message>injected fault</Message></Error>";
            let resp = hyper::Response::builder()
                .status(500)
                .header("content-type", "application/xml")
                .body(s3s::Body::from(body.to_string()))
                .unwrap();
            return Box::pin(async move { Ok(resp) });
        }
        hyper::service::Service::call(&self.inner, req)
    }
}

/// An S3 server on 127.0.0.1, serving one bucket from a temporary folder;
/// stopped when dropped.
struct Server {
    root: tempfile::TempDir,
    url: String,
    faults: Arc<FaultState>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start() -> Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let faults = Arc::new(FaultState {
            mode: Mutex::new(Faults::None),
            requests: AtomicUsize::new(0),
            injected_reads: AtomicUsize::new(0),
            injected_writes: AtomicUsize::new(0),
        });
        let mut builder = S3ServiceBuilder::new(Versioned {
            fs: s3s_fs::FileSystem::new(root.path()).unwrap(),
            versions: Mutex::default(),
            next: AtomicUsize::new(0),
        });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET));
        let service = Faulty {
            inner: builder.build(),
            faults: faults.clone(),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server {
            root,
            url,
            faults,
            runtime: Some(runtime),
        }
    }

    fn set_faults(&self, mode: Faults) {
        *self.faults.mode.lock().unwrap() = mode;
        for n in [
            &self.faults.requests,
            &self.faults.injected_reads,
            &self.faults.injected_writes,
        ] {
            n.store(0, Ordering::SeqCst);
        }
    }

    fn injected(&self) -> usize {
        self.injected_reads() + self.injected_writes()
    }

    fn injected_reads(&self) -> usize {
        self.faults.injected_reads.load(Ordering::SeqCst)
    }

    fn injected_writes(&self) -> usize {
        self.faults.injected_writes.load(Ordering::SeqCst)
    }

    /// The object `key` of the bucket, as a file of the server's folder.
    fn file(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }

    fn read(&self, key: &str) -> String {
        std::fs::read_to_string(self.file(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    /// Puts a fixture folder in the bucket, straight into the server's
    /// folder (no versions).
    fn copy_fixture(&self, name: &str, key: &str) {
        copy_dir(&repo_root().join("fixtures").join(name), &self.file(key));
    }

    /// Puts an object over the wire, as a client would (a new version).
    fn put(&self, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStoreExt;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.url)
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET)
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(store.put(&key.into(), bytes.into())).unwrap();
    }

    /// Runs `chargeback ARGS` in `dir` with the S3 environment a user of
    /// an S3-compatible store sets (and nothing else of the clouds').
    fn run(&self, dir: &TestDir, args: &[&str]) -> Output {
        self.run_as(dir, args, SECRET)
    }

    fn run_as(&self, dir: &TestDir, args: &[&str], secret: &str) -> Output {
        self.run_with(dir, args, secret, &[])
    }

    /// [`Server::run_as`], with variables changed: set to a value, or
    /// removed when the value is `None`.
    fn run_with(
        &self,
        dir: &TestDir,
        args: &[&str],
        secret: &str,
        vars: &[(&str, Option<&str>)],
    ) -> Output {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_chargeback"), dir, secret);
        cmd.args(args);
        for (k, v) in vars {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().expect("running chargeback");
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains(secret), "the secret was printed:\n{text}");
        }
        out
    }

    /// `program` in `dir` with the S3 environment a user of an
    /// S3-compatible store sets (and nothing else of the clouds').
    fn command(&self, program: &str, dir: &TestDir, secret: &str) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true");
        cmd
    }

    /// Stderr with the server's address (a random port) as `ENDPOINT`.
    fn stderr(&self, out: &Output) -> String {
        out.stderr.replace(&self.url, "ENDPOINT")
    }

    /// Every object under `prefix`, as sorted keys relative to it.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.file(prefix), &self.file(prefix), &mut out);
        out.sort();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
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
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// A policy whose every URL is in the bucket.
fn s3_policy(fixture: &str, extra: &str) -> String {
    let local = std::fs::read_to_string(
        repo_root()
            .join("fixtures")
            .join(fixture)
            .join("chargeback.toml"),
    )
    .unwrap();
    let policy = local
        .replace(
            &format!("\"fixtures/{fixture}/"),
            &format!("\"s3://{BUCKET}/{fixture}/"),
        )
        .replace(
            "url = \"out/{period}/\"",
            &format!("url = \"s3://{BUCKET}/closed/{{period}}/\""),
        );
    assert!(policy.contains("s3://ledger/closed/"), "{policy}");
    format!("{policy}\n{extra}\n")
}

fn manifest(server: &Server, prefix: &str) -> Value {
    serde_json::from_str(&server.read(&format!("{prefix}/manifest.json"))).unwrap()
}

#[test]
fn a_month_reads_from_and_publishes_to_s3() {
    let server = Server::start();
    server.copy_fixture("demo", "demo");
    let t = TestDir::with_fixture("demo");
    // The default storage settings: these small objects are scanned from
    // memory (Parquet included).
    t.write("s3.toml", &s3_policy("demo", ""));
    server.put("policies/demo.toml", t.read("s3.toml").into_bytes());

    let out = server.run(
        &t,
        &[
            "run",
            "--config",
            "s3://ledger/policies/demo.toml",
            "--period",
            "2025-01",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout
            .starts_with("closed 2025-01 → s3://ledger/closed/2025-01/\n"),
        "{}",
        out.stdout
    );
    let m = manifest(&server, "closed/2025-01");
    assert_eq!(m["policy"]["url"], "s3://ledger/policies/demo.toml");
    assert!(m["policy"]["version"].is_string(), "{}", m["policy"]);

    // The same month closed from the local folder gives the same numbers.
    let local = t.run(&[
        "run",
        "--config",
        "fixtures/demo/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(local.code, 0, "{}", local.transcript());
    // The same invoices and numbers; only the files naming their inputs
    // (summary, invoices.json, quarantine) say `s3://` where the other says
    // `fixtures/`.
    let invoices: Vec<String> = t
        .files("out/2025-01/invoices")
        .into_iter()
        .map(|f| format!("invoices/{f}"))
        .collect();
    assert!(invoices.len() >= 9, "{invoices:?}");
    for f in [
        "ledger.csv",
        "budgets.json",
        "reconciliation.csv",
        "exceptions.csv",
    ]
    .into_iter()
    .map(String::from)
    .chain(invoices)
    {
        assert!(
            std::fs::read(server.file(&format!("closed/2025-01/{f}"))).unwrap()
                == t.read_bytes(&format!("out/2025-01/{f}")),
            "{f}"
        );
    }
    let local_m: Value = serde_json::from_str(&t.read("out/2025-01/manifest.json")).unwrap();
    assert_eq!(m["totals"], local_m["totals"]);
    let inputs = m["inputs"].as_array().unwrap();
    let local_inputs = local_m["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), local_inputs.len());
    for (remote, local) in inputs.iter().zip(local_inputs) {
        let url = remote["url"].as_str().unwrap();
        assert_eq!(
            url.strip_prefix("s3://ledger/"),
            local["url"].as_str().unwrap().strip_prefix("fixtures/")
        );
        assert_eq!(remote["sha256"], local["sha256"], "{url}");
        assert_eq!(remote["size"], local["size"], "{url}");
        assert!(remote["etag"].is_string(), "{url} has an etag");
        assert!(local.get("etag").is_none(), "local records have no etag");
    }
    // Every output listed, with its hash; the manifest is the last word.
    let mut listed: Vec<String> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap().to_string())
        .collect();
    listed.push("manifest.json".into());
    listed.sort();
    assert_eq!(server.keys("closed/2025-01"), listed);

    // A rerun that gives the same bytes may replace a closed month...
    let again = server.run(
        &t,
        &[
            "run",
            "--config",
            "s3://ledger/policies/demo.toml",
            "--period",
            "2025-01",
            "-q",
        ],
    );
    assert_eq!(again.code, 0, "{}", again.transcript());
    // ...one that changes it may not, without --force.
    let bill = server.file("demo/billing/focus-2025-01.csv");
    let text = std::fs::read_to_string(&bill).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&bill, lines.join("\n") + "\n").unwrap();
    let changed = server.run(
        &t,
        &[
            "run",
            "--config",
            "s3://ledger/policies/demo.toml",
            "--period",
            "2025-01",
        ],
    );
    assert_eq!(changed.code, 2, "{}", changed.transcript());
    assert!(
        changed
            .stderr
            .starts_with("error: 2025-01 is closed at `s3://ledger/closed/2025-01/` and this run differs from it: "),
        "{}",
        changed.stderr
    );
    assert!(
        changed.stderr.contains(
            "hint: to issue credit and debit notes for what changed, `chargeback amend --period 2025-01 --as-of DATE`; "
        ) && changed.stderr.contains("to replace it, rerun with `--force`"),
        "{}",
        changed.stderr
    );
    assert_eq!(manifest(&server, "closed/2025-01"), m, "untouched");
    let forced = server.run(
        &t,
        &[
            "run",
            "--config",
            "s3://ledger/policies/demo.toml",
            "--period",
            "2025-01",
            "--force",
        ],
    );
    assert_eq!(forced.code, 0, "{}", forced.transcript());
    assert_ne!(manifest(&server, "closed/2025-01"), m);
}

#[test]
fn a_pinned_rerun_reads_the_versions_the_manifest_records() {
    let server = Server::start();
    let root = repo_root().join("fixtures/mini");
    for f in [
        "requests/gateway-a.csv",
        "requests/gateway-b.csv",
        "billing/focus-2025-01.csv",
        "model-catalog.json",
    ] {
        server.put(&format!("mini/{f}"), std::fs::read(root.join(f)).unwrap());
    }
    let t = TestDir::new();
    t.write("policy.toml", &s3_policy("mini", ""));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--config",
            "policy.toml",
            "--period",
            "2025-01",
            "-q",
        ];
        args.extend_from_slice(extra);
        server.run(&t, &args)
    };
    let first = run(&[]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let m1 = manifest(&server, "closed/2025-01");
    let bill = m1["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["url"] == "s3://ledger/mini/billing/focus-2025-01.csv")
        .unwrap()
        .clone();
    assert!(bill["version"].is_string(), "{bill}");
    assert!(bill["etag"].is_string(), "{bill}");

    // The bill is replaced by a new version without its last line.
    let text = std::fs::read_to_string(root.join("billing/focus-2025-01.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    server.put(
        "mini/billing/focus-2025-01.csv",
        (lines.join("\n") + "\n").into_bytes(),
    );

    let audit = run(&[
        "--pin-manifest",
        "s3://ledger/closed/2025-01/manifest.json",
        "--out",
        "s3://ledger/audit/2025-01",
    ]);
    assert_eq!(audit.code, 0, "{}", audit.transcript());
    let m2 = manifest(&server, "audit/2025-01");
    assert_eq!(
        m2["inputs"], m1["inputs"],
        "the same versions, the same bytes"
    );
    assert_eq!(m2["outputs"], m1["outputs"]);
    assert_eq!(
        server.read("audit/2025-01/invoices.json"),
        server.read("closed/2025-01/invoices.json")
    );
    // verify reads the recorded versions too: the month is identical
    // although the bill's current version is not the one it read.
    let verified = server.run(
        &t,
        &[
            "verify",
            "--manifest",
            "s3://ledger/closed/2025-01/manifest.json",
        ],
    );
    assert_eq!(verified.code, 0, "{}", verified.transcript());
    assert_eq!(verified.stdout, "identical: 20 outputs of 2025-01\n");

    // A pinned rerun checks the policy too, when read from the same place.
    t.write(
        "policy.toml",
        &(s3_policy("mini", "") + "# edited after the close\n"),
    );
    let edited = run(&[
        "--pin-manifest",
        "s3://ledger/closed/2025-01/manifest.json",
        "--out",
        "s3://ledger/audit2/2025-01",
    ]);
    assert_eq!(edited.code, 1, "{}", edited.transcript());
    assert!(
        edited.stderr.starts_with(
            "error: policy.toml: the object is not the one the pinned manifest records (sha256 `"
        ),
        "{}",
        edited.stderr
    );
    assert!(!server.file("audit2/2025-01/manifest.json").exists());

    // Unpinned, the rerun reads the current version: another month.
    let fresh = run(&["--out", "s3://ledger/fresh/2025-01"]);
    assert_eq!(fresh.code, 0, "{}", fresh.transcript());
    let m3 = manifest(&server, "fresh/2025-01");
    assert_ne!(m3["totals"], m1["totals"]);
    assert_ne!(m3["inputs"], m1["inputs"]);
}

/// A published month as a reader checks it: a manifest, every output it
/// lists with the bytes it records, nothing else but the manifest.
fn assert_complete(server: &Server, prefix: &str) {
    use sha2::Digest;
    let m = manifest(server, prefix);
    let mut listed = vec!["manifest.json".to_string()];
    for o in m["outputs"].as_array().unwrap() {
        let path = o["path"].as_str().unwrap();
        let bytes = std::fs::read(server.file(&format!("{prefix}/{path}"))).unwrap();
        assert_eq!(
            o["sha256"],
            hex::encode(sha2::Sha256::digest(&bytes)),
            "{path}"
        );
        listed.push(path.to_string());
    }
    listed.sort();
    assert_eq!(server.keys(prefix), listed, "no partial set, no marker");
}

#[test]
fn a_server_failing_one_request_in_five_publishes_completely_or_exits_3_without_a_manifest() {
    let server = Server::start();
    server.copy_fixture("mini", "mini");
    let t = TestDir::new();
    let args = ["run", "--config", "policy.toml", "--period", "2025-01"];

    // With the default retries, every fault is absorbed: reads and writes
    // were hit, and the month is published whole.
    t.write("policy.toml", &s3_policy("mini", ""));
    server.set_faults(Faults::EveryFifth);
    let out = server.run(&t, &args);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(server.injected_reads() > 0, "faults in reads");
    assert!(server.injected_writes() > 0, "faults in writes");
    assert_complete(&server, "closed/2025-01");

    // Without retries, a fault in the middle of publishing stops the run:
    // exit 3 naming the object and the store's answer, and no manifest
    // over the part that was written. (Outputs are written several at a
    // time, so the fault is put on one object to keep the message exact.)
    t.write(
        "policy.toml",
        &s3_policy("mini", "[storage]\nmax_retries = 0"),
    );
    server.set_faults(Faults::PutsEndingWith("/invoices.json"));
    let out = server.run(
        &t,
        &[&args[..], &["--out", "s3://ledger/retry/2025-01/"]].concat(),
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert_eq!(server.injected(), 1);
    assert_eq!(
        server.stderr(&out),
        "error: s3://ledger/retry/2025-01/invoices.json: writing failed: PUT \
         ENDPOINT/ledger/retry/2025-01/invoices.json: 500 Internal Server Error: InternalError: \
         injected fault\n\
         hint: transient errors (5xx, 429, resets, timeouts) are not retried with [storage] \
         max_retries = 0; check that the store is reachable, or raise it\n"
    );
    assert!(!server.file("retry/2025-01/manifest.json").exists());
    assert!(
        server.file("retry/2025-01/budgets.json").exists(),
        "a partial set: what comes before the failure in path order is written"
    );
    assert!(
        server
            .file("retry/2025-01/.chargeback-publishing.json")
            .exists()
    );

    // The next run publishes the month whole and cleans up.
    server.set_faults(Faults::None);
    let out = server.run(
        &t,
        &[&args[..], &["--out", "s3://ledger/retry/2025-01/"]].concat(),
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_complete(&server, "retry/2025-01");
    assert_eq!(
        manifest(&server, "retry/2025-01")["outputs"],
        manifest(&server, "closed/2025-01")["outputs"]
    );
}

#[test]
fn a_publish_that_keeps_failing_exits_3_and_leaves_no_manifest() {
    let server = Server::start();
    server.copy_fixture("mini", "mini");
    let t = TestDir::new();
    t.write(
        "policy.toml",
        &s3_policy(
            "mini",
            "[storage]\nmax_retries = 2\nretry_timeout_seconds = 10\ntimeout_seconds = 10",
        ),
    );
    server.set_faults(Faults::PutsEndingWith("/manifest.json"));
    let out = server.run(
        &t,
        &["run", "--config", "policy.toml", "--period", "2025-01"],
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert_eq!(
        server.stderr(&out),
        "error: s3://ledger/closed/2025-01/manifest.json: writing failed after 2 retries: PUT \
         ENDPOINT/ledger/closed/2025-01/manifest.json: 500 Internal Server Error: InternalError: \
         injected fault\n\
         hint: transient errors (5xx, 429, resets, timeouts) are retried up to 2 times; check \
         that the store is reachable, or raise [storage] max_retries\n"
    );
    assert_eq!(server.injected(), 3, "one try and two retries");
    assert!(!server.file("closed/2025-01/manifest.json").exists());
    assert!(
        server.file("closed/2025-01/ledger.csv").exists(),
        "a partial set"
    );

    // The next run finishes the job and cleans up after the failed one.
    server.set_faults(Faults::None);
    let out = server.run(
        &t,
        &[
            "run",
            "--config",
            "policy.toml",
            "--period",
            "2025-01",
            "-q",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(server.file("closed/2025-01/manifest.json").exists());
    assert!(
        !server
            .keys("closed/2025-01")
            .iter()
            .any(|k| k.starts_with('.')),
        "{:?}",
        server.keys("closed/2025-01")
    );
}

#[test]
fn storage_errors_name_the_url_and_never_the_credentials() {
    let server = Server::start();
    server.copy_fixture("mini", "mini");
    let t = TestDir::new();
    t.write("policy.toml", &s3_policy("mini", ""));
    let args = ["run", "--config", "policy.toml", "--period", "2025-01"];
    let s3_hint = "hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION; \
                   AWS_ENDPOINT_URL for an S3-compatible store), or the options of [storage.s3]\n";

    // A wrong secret: access denied, exit 3, the secret nowhere.
    let wrong = "WRONG-s3cr3t-7b2d4e9a";
    let out = server.run_as(&t, &args, wrong);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert_eq!(
        server.stderr(&out),
        format!(
            "error: s3://ledger/mini/model-catalog.json: reading: access denied: GET \
             ENDPOINT/ledger/mini/model-catalog.json: 403 Forbidden: SignatureDoesNotMatch\n\
             {s3_hint}"
        )
    );

    // A plain-HTTP endpoint that was not allowed.
    let out = server.run_with(&t, &args, SECRET, &[("AWS_ALLOW_HTTP", None)]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert_eq!(
        server.stderr(&out),
        "error: s3://ledger/mini/model-catalog.json: the endpoint `ENDPOINT` is plain HTTP, \
         which is off unless allowed\n\
         hint: set AWS_ALLOW_HTTP=true (or `allow_http = true` in [storage.s3]) for a store on \
         a trusted network, or give an `https://` endpoint\n"
    );

    // An endpoint where nothing listens: retried, then exit 3 with the
    // cause.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    t.write(
        "policy.toml",
        &s3_policy("mini", "[storage]\nmax_retries = 1"),
    );
    let out = server.run_with(&t, &args, SECRET, &[("AWS_ENDPOINT_URL", Some(&closed))]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr.starts_with(&format!(
            "error: s3://ledger/mini/model-catalog.json: reading failed after 1 retry: GET \
             {closed}/ledger/mini/model-catalog.json: error sending request: "
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
    assert!(
        out.stderr.ends_with(
            "\nhint: transient errors (5xx, 429, resets, timeouts) are retried up to 1 time; \
             check that the store is reachable, or raise [storage] max_retries\n"
        ),
        "{}",
        out.stderr
    );

    // A bucket that does not exist: bad input, exit 1.
    t.write(
        "policy.toml",
        &s3_policy("mini", "").replace("s3://ledger/mini/requests/", "s3://ledgr/mini/requests/"),
    );
    let out = server.run(&t, &args);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: s3://ledgr/mini/requests/: no such bucket `s3://ledgr`\n\
         hint: check the bucket's name in the URL, and the endpoint and region it is looked up \
         at (AWS_ENDPOINT_URL, AWS_REGION or [storage.s3])\n"
    );

    // The secret in the policy only, and a store that fails every try.
    t.write(
        "policy.toml",
        &s3_policy(
            "mini",
            &format!(
                "[storage]\nmax_retries = 1\n[storage.s3]\nsecret_access_key = \"{SECRET}\"\n"
            ),
        ),
    );
    server.set_faults(Faults::PutsEndingWith(".json"));
    let out = server.run_with(&t, &args, SECRET, &[("AWS_SECRET_ACCESS_KEY", None)]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert_eq!(
        server.stderr(&out),
        "error: s3://ledger/closed/2025-01/.chargeback-publishing.json: writing failed after 1 \
         retry: PUT ENDPOINT/ledger/closed/2025-01/.chargeback-publishing.json: 500 Internal \
         Server Error: InternalError: injected fault\n\
         hint: transient errors (5xx, 429, resets, timeouts) are retried up to 1 time; check \
         that the store is reachable, or raise [storage] max_retries\n"
    );
    server.set_faults(Faults::None);

    // A missing object is bad input, exit 1, with the usual hint.
    std::fs::remove_file(server.file("mini/billing/focus-2025-01.csv")).unwrap();
    let out = server.run(&t, &args);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: s3://ledger/mini/billing/focus-2025-01.csv: no such file\n\
         hint: check the path in [sources] and the `--period` it was expanded with\n"
    );

    // Nothing written anywhere holds the secret.
    server.copy_fixture("mini", "mini");
    let out = server.run(&t, &args);
    assert_eq!(out.code, 0, "{}", out.transcript());
    for key in server.keys("closed/2025-01") {
        let bytes = std::fs::read(server.file(&format!("closed/2025-01/{key}"))).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{key} holds the secret"
        );
    }
}

#[test]
fn large_objects_are_scanned_from_temporary_files_with_the_same_result() {
    let server = Server::start();
    server.copy_fixture("mini", "mini");
    let t = TestDir::new();
    let spool = TestDir::new();
    let args = [
        "run",
        "--config",
        "policy.toml",
        "--period",
        "2025-01",
        "-q",
    ];
    t.write("policy.toml", &s3_policy("mini", ""));
    let out = server.run(&t, &[&args[..], &["--out", "s3://ledger/memory/"]].concat());
    assert_eq!(out.code, 0, "{}", out.transcript());
    // Every object above 0 MiB goes to a temporary file that Polars scans;
    // the files go when the run ends.
    t.write(
        "policy.toml",
        &s3_policy("mini", "[storage]\nspool_above_mb = 0"),
    );
    let tmp = spool.path().to_str().unwrap();
    let out = server.run_with(
        &t,
        &[&args[..], &["--out", "s3://ledger/spooled/"]].concat(),
        SECRET,
        &[("TMPDIR", Some(tmp))],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(spool.files(""), Vec::<String>::new(), "spool removed");
    let (memory, spooled) = (manifest(&server, "memory"), manifest(&server, "spooled"));
    assert_eq!(memory["inputs"], spooled["inputs"]);
    assert_eq!(memory["outputs"], spooled["outputs"]);
}

#[test]
fn a_templates_folder_that_cannot_be_read_stops_the_run() {
    let server = Server::start();
    server.copy_fixture("mini", "mini");
    let brand = std::fs::read_to_string(repo_root().join("templates/brand.typ")).unwrap();
    server.put("brand/brand.typ", brand.into_bytes());
    let t = TestDir::new();
    let policy = s3_policy("mini", "").replace(
        "[output]\n",
        &format!("[output]\ntemplates = \"s3://{BUCKET}/brand/\"\n"),
    );
    assert!(policy.contains("templates = "), "{policy}");
    t.write("policy.toml", &policy);
    server.set_faults(Faults::DenyUnder("/ledger/brand/"));
    let args = ["run", "--config", "policy.toml", "--period", "2025-01"];
    let out = server.run(&t, &args);
    // Not a silent fallback to the built-in look: an error, and nothing
    // published.
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        server
            .stderr(&out)
            .starts_with("error: s3://ledger/brand/invoice.html.hbs: checking: access denied: HEAD ENDPOINT/ledger/brand/invoice.html.hbs: 403 Forbidden"),
        "{}",
        out.transcript()
    );
    assert!(
        server.keys("closed").is_empty(),
        "{:?}",
        server.keys("closed")
    );

    server.set_faults(Faults::None);
    let out = server.run(&t, &args);
    assert_eq!(out.code, 0, "{}", out.transcript());
}

/// The scheduled job of examples/month-end.sh, as a CI runner would run
/// it: the policy and inputs in the bucket, `--period previous` from
/// `--as-of`, both gates, the invoices published to the bucket, and the
/// script saying where they are (exit 4: the demo month has exceptions
/// and a team over budget).
#[test]
fn the_month_end_script_closes_the_previous_month_into_the_bucket() {
    let server = Server::start();
    server.copy_fixture("demo", "demo");
    let t = TestDir::with_fixture("demo");
    server.put("policies/demo.toml", s3_policy("demo", "").into_bytes());
    let script = repo_root().join("examples/month-end.sh");
    let out = server
        .command("bash", &t, SECRET)
        .arg(&script)
        .args(["s3://ledger/policies/demo.toml", "--as-of", "2025-02-02"])
        .env("CHARGEBACK", env!("CARGO_BIN_EXE_chargeback"))
        .output()
        .expect("running the script");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    assert!(
        stdout.starts_with(
            "closed 2025-01: invoices in s3://ledger/closed/2025-01/invoices/, summary in month-end-summary.json\n\
             \x20 billed 373.74 USD, charged 725.66, exceptions 10\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("over budget: `legal`"), "{stdout}");
    let summary: Value = serde_json::from_str(&t.read("month-end-summary.json")).unwrap();
    assert_eq!(summary["exit_code"], 4);
    assert_eq!(summary["period"], "2025-01");
    assert_eq!(summary["as_of"], "2025-02-02");
    let keys = server.keys("closed/2025-01");
    assert!(keys.contains(&"manifest.json".to_string()), "{keys:?}");
    assert!(
        keys.iter()
            .filter(|k| k.starts_with("invoices/") && k.ends_with(".pdf"))
            .count()
            == 9,
        "{keys:?}"
    );
}

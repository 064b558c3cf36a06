//! The Spark engine against the local one (issue #16): the same months
//! through `[engine] kind = "spark-connect"` on a real Spark Connect server
//! and through this process give byte-identical outputs, at several split
//! and shuffle settings.
//!
//! The server is PyPI's `pyspark` (which bundles Spark and its Connect
//! server), installed once under `~/.cache/llm-chargeback/` when missing
//! (or taken from `CHARGEBACK_SPARK_HOME`), started here on 127.0.0.1 with
//! `local[2]`, and stopped by its pid file once this test process is gone.
//! It needs Java 17 (`apt-get install openjdk-17-jre-headless`). A server
//! that cannot start fails every test here: none is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::TestDir;

/// The pyspark release the tests run against.
const PYSPARK: &str = "4.3.0";

fn cache() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/llm-chargeback")
}

/// `SPARK_HOME`: `CHARGEBACK_SPARK_HOME`, else pyspark's folder in the
/// cache, installed with pip when missing.
fn spark_home() -> PathBuf {
    if let Ok(h) = std::env::var("CHARGEBACK_SPARK_HOME") {
        return PathBuf::from(h);
    }
    let target = cache().join(format!("pyspark-{PYSPARK}"));
    let home = target.join("pyspark");
    if !home.join("sbin/start-connect-server.sh").exists() {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "--target"])
            .arg(&target)
            .arg(format!("pyspark=={PYSPARK}"))
            .status()
            .expect("running pip to install pyspark");
        assert!(
            status.success(),
            "could not install pyspark {PYSPARK} into {}",
            target.display()
        );
    }
    home
}

/// The URL of the one server of this test process, started on first use.
fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(start)
}

fn start() -> String {
    let home = spark_home();
    assert!(
        Command::new("java")
            .arg("-version")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "the Spark tests need Java 17: apt-get install openjdk-17-jre-headless"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    // Logs and the pid file outlive this process (the watcher needs them).
    let dir = std::env::temp_dir().join(format!("chargeback-spark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sbin = home.join("sbin");
    let me = std::process::id();
    // Started as a daemon (it writes its pid file), then a watcher stops
    // it by that pid once this test process has exited.
    let script = format!(
        "'{start}' --master 'local[2]' \
         --conf spark.connect.grpc.binding.address=127.0.0.1 \
         --conf spark.connect.grpc.binding.port={port} \
         --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
         --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4 \
         --driver-memory 2g || exit 1
         while kill -0 {me} 2>/dev/null; do sleep 1; done
         '{stop}'",
        start = sbin.join("start-connect-server.sh").display(),
        stop = sbin.join("stop-connect-server.sh").display(),
    );
    let log = std::fs::File::create(dir.join("watcher.log")).unwrap();
    // Not waited for: the watcher outlives this process by design.
    #[allow(clippy::zombie_processes)]
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("SPARK_HOME", &home)
        .env("SPARK_LOG_DIR", &dir)
        .env("SPARK_PID_DIR", &dir)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting the Spark Connect server");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            let logs: String = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
                .collect();
            let tail: String = logs.lines().rev().take(40).collect::<Vec<_>>().join("\n");
            panic!(
                "the Spark Connect server did not start on port {port}; its logs (last lines first):\n{tail}"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    format!("sc://127.0.0.1:{port}")
}

/// A policy over the mini month's bill and catalog reading `requests`
/// (TOML array contents), with `engine` (a TOML table body) when given.
fn policy(requests: &str, engine: Option<&str>) -> String {
    let mut p = format!(
        "[organization]\nname = \"Spark Corp\"\ninvoice_prefix = \"SC\"\ncurrency = \"USD\"\n\
         [sources]\nrequests = [{requests}]\n\
         billing = [{{ url = \"fixtures/mini/billing/focus-{{period}}.csv\", format = \"focus\" }}]\n\
         catalog = \"fixtures/mini/model-catalog.json\"\n[output]\nurl = \"out/{{period}}/\"\n"
    );
    if let Some(e) = engine {
        p.push_str("[engine]\n");
        p.push_str(e);
    }
    p
}

/// The `[engine]` table of the server, with `conf` settings.
fn engine(conf: &[(&str, &str)]) -> String {
    let mut e = format!("kind = \"spark-connect\"\nurl = \"{}\"\n", server());
    if !conf.is_empty() {
        e.push_str("conf = { ");
        e.push_str(
            &conf
                .iter()
                .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
                .collect::<Vec<_>>()
                .join(", "),
        );
        e.push_str(" }\n");
    }
    e
}

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Closes the month with the policy `text` into `out/<period>/` and moves
/// that folder to `<name>/`; the exit code and stderr.
fn close(t: &TestDir, text: &str, period: &str, name: &str) -> (i32, String) {
    t.write("policy.toml", text);
    let out = t.run(&[
        "run",
        "--config",
        "policy.toml",
        "--period",
        period,
        "--force",
    ]);
    if out.code == 0 {
        std::fs::rename(t.path().join("out").join(period), t.path().join(name)).unwrap();
    }
    (out.code, out.stderr)
}

/// The two runs' outputs are the same bytes, but for the manifest's
/// record of the policy (whose `[engine]` differs) and of the engine.
fn assert_same(t: &TestDir, local: &str, spark: &str, what: &str) {
    let (a, b) = (tree(&t.path().join(local)), tree(&t.path().join(spark)));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: the same files"
    );
    for (path, bytes) in &a {
        if path == "manifest.json" {
            let strip = |b: &[u8]| {
                let mut v: Value = serde_json::from_slice(b).unwrap();
                let m = v.as_object_mut().unwrap();
                m.remove("policy");
                m.remove("engine");
                v
            };
            assert_eq!(strip(bytes), strip(&b[path]), "{what}: manifest.json");
        } else {
            assert!(bytes == &b[path], "{what}: {path} differs");
        }
    }
}

/// The settings the differential tests run under: one split per file or
/// many (8 KB splits cut every file here), one shuffle partition or 7.
const SETTINGS: [[(&str, &str); 2]; 2] = [
    [
        ("spark.sql.files.maxPartitionBytes", "8k"),
        ("spark.sql.shuffle.partitions", "7"),
    ],
    [
        ("spark.sql.files.maxPartitionBytes", "128m"),
        ("spark.sql.shuffle.partitions", "1"),
    ],
];

/// Closes the month of `requests` locally and on Spark under each of
/// [`SETTINGS`], and checks the outputs are the same bytes.
fn differential(t: &TestDir, requests: &str, period: &str, what: &str) -> Value {
    differential_under(t, requests, period, what, &SETTINGS)
}

/// [`differential`] under the given settings only.
fn differential_under(
    t: &TestDir,
    requests: &str,
    period: &str,
    what: &str,
    settings: &[[(&str, &str); 2]],
) -> Value {
    let (code, err) = close(t, &policy(requests, None), period, "local");
    assert_eq!(code, 0, "{what}, local: {err}");
    let mut manifest = Value::Null;
    for (n, conf) in settings.iter().enumerate() {
        let name = format!("spark-{n}");
        let (code, err) = close(t, &policy(requests, Some(&engine(conf))), period, &name);
        assert_eq!(code, 0, "{what}, spark {conf:?}: {err}");
        assert_same(t, "local", &name, &format!("{what}, spark {conf:?}"));
        manifest = serde_json::from_str(&t.read(&format!("{name}/manifest.json"))).unwrap();
    }
    std::fs::remove_dir_all(t.path().join("local")).unwrap();
    for n in 0..settings.len() {
        std::fs::remove_dir_all(t.path().join(format!("spark-{n}"))).unwrap();
    }
    manifest
}

fn fixtures(names: &[&str]) -> TestDir {
    let t = TestDir::new();
    for n in names {
        t.copy_fixture(n);
    }
    t
}

/// Every writer's encoding of the same twelve rows (typed timestamps in
/// ms, us and ns, UTC, naive and New York, INT96; int32, uint32, int64
/// and double counts; dictionary and large strings; CSV `NULL`s; DuckDB's
/// timestamp text; JSON lines), duplicates included, and the mini month's
/// two CSV logs with a duplicate across them: byte-identical months.
#[test]
fn every_writer_gives_the_same_month_on_spark() {
    let t = fixtures(&["writers", "mini"]);
    // Each file under one of the settings, in turn (both would double a
    // run that is mostly Spark's start-up per query).
    for (n, file) in [
        "rows.csv",
        "pyarrow_ts-ms-utc_int64.parquet",
        "pyarrow_ts-us-naive_int32.parquet",
        "pyarrow_int96_float64.parquet",
        "pyarrow_large-string.parquet",
        "pyarrow_dictionary.parquet",
        "duckdb_timestamptz.parquet",
        "duckdb_nulls-NULL.csv",
        "duckdb_timestamptz_nulls-NULL.csv",
        "pyarrow_nulls-empty.csv",
        "duckdb_rfc3339.jsonl",
    ]
    .iter()
    .enumerate()
    {
        differential_under(
            &t,
            &format!("\"fixtures/writers/{file}\""),
            "2025-01",
            file,
            &SETTINGS[n % 2..n % 2 + 1],
        );
    }
    differential(&t, "\"fixtures/mini/requests/*.csv\"", "2025-01", "mini");
    // Spark reads no nanosecond timestamps: an error naming the file, with
    // the fix, before anything is published.
    let file = "fixtures/writers/pyarrow_ts-ns-newyork_uint32.parquet";
    let (code, err) = close(
        &t,
        &policy(&format!("\"{file}\""), Some(&engine(&[]))),
        "2025-01",
        "ns",
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: {file}: the cluster cannot read the file: "
        )),
        "{err}"
    );
    assert!(err.contains("hint: Spark cannot read nanosecond timestamps: write the file with microseconds (pyarrow: `coerce_timestamps=\"us\"`), or close this month with `[engine] kind = \"local\"`"), "{err}");
}

/// Rows the cluster is not sure of, every way a row can fail, and
/// duplicates within and across files, in CSV, JSON lines and Parquet:
/// the same quarantine, duplicates and invoices as the local path.
#[test]
fn bad_rows_and_duplicates_are_judged_as_locally() {
    let t = fixtures(&["mini"]);
    let header = "request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status,outcome,outcome_count,user";
    let rows = [
        // Plain, and its duplicate (both sure): the first is kept.
        "r1,2025-01-03T10:00:00Z,openai,gpt-4o,proj_a,support,tickets,1000,0,0,100,ok,,,ana",
        "r1,2025-01-03T10:00:00Z,openai,gpt-4o,proj_a,support,tickets,1000,0,0,100,ok,,,ana",
        // A bad row first, then a good one with its id: the good one keeps it.
        "r2,not a time,openai,gpt-4o,proj_a,search,,10,0,0,1,ok,,,",
        "r2,2025-01-04T23:30:00-02:00,openai,gpt-4o,proj_a,search,,2000,0,0,200,ok,,,bo",
        // Padded ids are the same id; a padded timestamp is still a time.
        " r3 ,2025-01-05 10:00:00,openai,gpt-4o-mini,proj_a,search,,300,0,0,30,OK,,,",
        "r3, 2025-01-05T10:00:00Z ,openai,gpt-4o-mini,proj_a,search,,300,0,0,30,ok,,,",
        // Counts written as decimals, negative, too large, not numbers.
        "r4,2025-01-06T00:00:00+05:30,openai,gpt-4o,proj_a,support,,12.0,0,0,1,ok,,,",
        "r5,2025-01-06T00:00:00Z,openai,gpt-4o,proj_a,support,,-5,0,0,1,ok,,,",
        "r6,2025-01-06T00:00:00Z,openai,gpt-4o,proj_a,support,,2000000000,0,0,1,ok,,,",
        "r7,2025-01-06T00:00:00Z,openai,gpt-4o,proj_a,support,,many,0,0,1,ok,,,",
        // Missing id, provider, model; unknown status; unknown model.
        ",2025-01-07T00:00:00Z,openai,gpt-4o,proj_a,support,,1,0,0,1,ok,,,",
        "r8,2025-01-07T00:00:00Z,,gpt-4o,proj_a,support,,1,0,0,1,ok,,,",
        "r9,2025-01-07T00:00:00Z,openai,,proj_a,support,,1,0,0,1,ok,,,",
        "r10,2025-01-07T00:00:00Z,openai,gpt-4o,proj_a,support,,1,0,0,1,maybe,,,",
        "r11,2025-01-07T00:00:00Z,openai,gpt-9,proj_a,support,,1,0,0,1,ok,,,",
        "r11,2025-01-07T00:00:00Z,openai,gpt-9,proj_a,support,,1,0,0,1,ok,,,",
        // Outcomes, an orphan count, a failed request, another month.
        "r12,2025-01-08T08:00:00.123456789Z,openai,gpt-4o,proj_a,support,tickets,500,100,0,50,ok,resolved,2,ana",
        "r13,2025-01-08T08:00:00Z,openai,gpt-4o,proj_a,support,,500,0,0,50,ok,,3,",
        "r14,2025-01-09T08:00:00Z,anthropic,claude-3-5-sonnet,wrkspc_1,copilot,,700,0,50,70,error,,,cy",
        "r15,2025-02-01T00:30:00+01:00,openai,gpt-4o,proj_a,support,,1,0,0,1,ok,,,",
        "r16,2025-02-29T00:00:00Z,openai,gpt-4o,proj_a,support,,1,0,0,1,ok,,,",
        "r17,NULL,openai,gpt-4o,proj_a,support,,1,0,0,1,ok,,,",
    ];
    let mut a = format!("{header}\n");
    for r in &rows[..12] {
        a.push_str(r);
        a.push('\n');
    }
    let mut b = format!("{header}\n");
    // The second file repeats r1 and r12: duplicates across files.
    b.push_str(rows[0]);
    b.push('\n');
    for r in &rows[12..] {
        b.push_str(r);
        b.push('\n');
    }
    b.push_str(rows[16]);
    b.push('\n');
    t.write("logs/a.csv", &a);
    t.write("logs/b.csv", &b);
    differential(&t, "\"logs/*.csv\"", "2025-01", "csv");

    // The same rows as JSON lines (text as written) and as Parquet
    // written by Polars with typed counts where they are numbers.
    let jsonl: String = [&a, &b]
        .iter()
        .flat_map(|f| f.lines().skip(1))
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let fields: Vec<String> = header
                .split(',')
                .zip(&cells)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("\"{k}\": {}", serde_json::to_string(v).unwrap()))
                .collect();
            format!("{{{}}}\n", fields.join(", "))
        })
        .collect();
    std::fs::remove_dir_all(t.path().join("logs")).unwrap();
    t.write("logs/all.jsonl", &jsonl);
    differential(&t, "\"logs/*.jsonl\"", "2025-01", "jsonl");

    std::fs::remove_dir_all(t.path().join("logs")).unwrap();
    write_parquet(&t, "logs/all.parquet", &[&a, &b]);
    differential(&t, "\"logs/*.parquet\"", "2025-01", "parquet");
}

/// The CSV rows of `files` as one Parquet file written by Polars: output
/// tokens as int32 and cached input tokens as uint32 where they are whole
/// numbers (null elsewhere), the rest text. (Typed timestamps are the
/// writers' files' part.)
fn write_parquet(t: &TestDir, rel: &str, files: &[&String]) {
    use polars::prelude::*;
    let text: String = files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.lines().skip(usize::from(i > 0)).map(|l| format!("{l}\n")))
        .collect();
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .into_reader_with_file_handle(std::io::Cursor::new(text.into_bytes()))
        .finish()
        .unwrap();
    let mut df = df
        .lazy()
        .with_columns([
            col("output_tokens").cast(DataType::Int32),
            col("cached_input_tokens").cast(DataType::UInt32),
        ])
        .collect()
        .unwrap();
    let p = t.path().join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(p).unwrap();
    ParquetWriter::new(&mut f).finish(&mut df).unwrap();
}

/// The insights month (pyarrow Parquet with conversation ids and the
/// estimated flag, a CSV gateway log): the same insights, to the byte.
#[test]
fn conversations_and_estimates_are_the_same_on_spark() {
    let t = fixtures(&["insights"]);
    let text = t.read("fixtures/insights/chargeback.toml");
    let (code, err) = close(&t, &text, "2025-03", "local");
    assert_eq!(code, 0, "{err}");
    for (n, conf) in SETTINGS.iter().enumerate() {
        let name = format!("spark-{n}");
        let with = format!("{text}\n[engine]\n{}", engine(conf));
        let (code, err) = close(&t, &with, "2025-03", &name);
        assert_eq!(code, 0, "{conf:?}: {err}");
        assert_same(&t, "local", &name, &format!("insights {conf:?}"));
    }
}

/// The manifest says which engine ran, its version and the settings that
/// shape the result; never a token, which comes from the environment.
#[test]
fn the_manifest_records_the_engine_and_no_token() {
    let t = fixtures(&["mini"]);
    let conf = [("spark.sql.shuffle.partitions", "3")];
    t.write(
        "policy.toml",
        &policy("\"fixtures/mini/requests/*.csv\"", Some(&engine(&conf))),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chargeback"))
        .args(["run", "--config", "policy.toml", "--period", "2025-01"])
        .current_dir(t.path())
        .env("CHARGEBACK_SPARK_TOKEN", "s3cr3t-t0ken")
        .output()
        .unwrap();
    // The local test server takes no token and ignores one.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = t.read("out/2025-01/manifest.json");
    assert!(!text.contains("s3cr3t"), "{text}");
    let m: Value = serde_json::from_str(&text).unwrap();
    let e = &m["engine"];
    assert_eq!(e["kind"], "spark-connect");
    assert_eq!(e["version"], PYSPARK);
    assert_eq!(e["settings"]["spark.sql.shuffle.partitions"], "3");
    assert_eq!(e["settings"]["spark.sql.session.timeZone"], "UTC");
    assert_eq!(e["settings"]["list_limit"], "100000");
    assert_eq!(e["unlisted_rows"], 0);
}

/// Beyond `list_limit`, duplicates are counted, not named: the summary
/// says how many, and the totals are those of the local run.
#[test]
fn duplicates_beyond_the_list_limit_are_counted() {
    let t = fixtures(&["mini"]);
    let header =
        "request_id,timestamp,provider,model,billing_scope,team,input_tokens,output_tokens";
    let mut text = format!("{header}\n");
    for i in 0..40 {
        for _ in 0..3 {
            text.push_str(&format!(
                "d{i},2025-01-10T10:00:00Z,openai,gpt-4o,proj_a,support,100,10\n"
            ));
        }
    }
    t.write("logs/dups.csv", &text);
    let (code, err) = close(&t, &policy("\"logs/dups.csv\"", None), "2025-01", "local");
    assert_eq!(code, 0, "{err}");
    let limited = format!("{}list_limit = 5\n", engine(&[]));
    let (code, err) = close(
        &t,
        &policy("\"logs/dups.csv\"", Some(&limited)),
        "2025-01",
        "spark",
    );
    assert_eq!(code, 0, "{err}");
    let month = |name: &str| -> Value {
        serde_json::from_str(&t.read(&format!("{name}/invoices.json"))).unwrap()
    };
    let (local, spark) = (month("local"), month("spark"));
    assert_eq!(local["inputs"]["duplicates_dropped"], 80);
    assert_eq!(spark["inputs"]["duplicates_dropped"], 80);
    assert_eq!(spark["inputs"]["rows_not_listed"], 75);
    assert_eq!(local["invoices"], spark["invoices"]);
    let listed = t.read("spark/quarantine/duplicates.csv").lines().count() - 1;
    assert_eq!(listed, 5);
    assert!(
        t.read("spark/summary.html")
            .contains("not named in quarantine/")
    );
    let m: Value = serde_json::from_str(&t.read("spark/manifest.json")).unwrap();
    assert_eq!(m["engine"]["unlisted_rows"], 75);
}

/// What the cluster cannot read stops the run before anything is
/// published, naming the file; a server that is not there is a storage
/// error (exit 3) naming the URL.
#[test]
fn unreadable_inputs_and_a_missing_server_are_errors() {
    let t = fixtures(&["mini", "bad"]);
    t.write(
        "policy.toml",
        &policy("\"fixtures/bad/not-a-parquet.parquet\"", Some(&engine(&[]))),
    );
    let out = t.run(&["run", "--config", "policy.toml", "--period", "2025-01"]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("fixtures/bad/not-a-parquet.parquet"),
        "{}",
        out.stderr
    );
    assert!(!t.exists("out/2025-01"));

    t.write(
        "policy.toml",
        &policy(
            "\"fixtures/bad/requests-missing-column.csv\"",
            Some(&engine(&[])),
        ),
    );
    let spark = t.run(&["run", "--config", "policy.toml", "--period", "2025-01"]);
    t.write(
        "policy.toml",
        &policy("\"fixtures/bad/requests-missing-column.csv\"", None),
    );
    let local = t.run(&["run", "--config", "policy.toml", "--period", "2025-01"]);
    assert_eq!(spark.code, 1);
    assert_eq!(spark.stderr, local.stderr, "the same message as locally");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    t.write(
        "policy.toml",
        &policy(
            "\"fixtures/mini/requests/*.csv\"",
            Some(&format!(
                "kind = \"spark-connect\"\nurl = \"sc://127.0.0.1:{port}\"\n"
            )),
        ),
    );
    let out = t.run(&["run", "--config", "policy.toml", "--period", "2025-01"]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr.contains(&format!(
            "sc://127.0.0.1:{port}: cannot reach the Spark Connect server"
        )),
        "{}",
        out.stderr
    );
}

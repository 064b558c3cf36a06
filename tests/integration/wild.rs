//! Inputs as other tools write them (issue #11): one month's request log as
//! written by pyarrow, DuckDB and Polars in every physical type they use,
//! empty exports of a quiet day, native cloud exports handed over instead
//! of FOCUS, truncated API page sets, the FinOps Foundation's FOCUS
//! sample, bills of the wrong month and rejected bill rows. Fixtures and
//! their provenance: fixtures/{writers,empty,native-exports,api-pages,focus-sample}/README.md.

use serde_json::Value;

use crate::util::{Output, TestDir, repo_root};

/// A policy over the mini month's bill and catalog, with `requests` and
/// `billing` as given (TOML arrays' contents).
fn policy(requests: &str, billing: &str) -> String {
    format!(
        "[organization]\nname = \"Wild Corp\"\ninvoice_prefix = \"WC\"\ncurrency = \"USD\"\n\
         [sources]\nrequests = [{requests}]\nbilling = [{billing}]\n\
         catalog = \"fixtures/mini/model-catalog.json\"\n[output]\nurl = \"out/{{period}}/\"\n"
    )
}

const MINI_BILL: &str = r#"{ url = "fixtures/mini/billing/focus-{period}.csv", format = "focus" }"#;

fn close(t: &TestDir, policy_text: &str, period: &str, extra: &[&str]) -> Output {
    t.write("policy.toml", policy_text);
    let mut args = vec!["run", "--config", "policy.toml", "--period", period];
    args.extend_from_slice(extra);
    t.run(&args)
}

fn month(t: &TestDir, period: &str) -> Value {
    serde_json::from_str(&t.read(&format!("out/{period}/invoices.json"))).unwrap()
}

fn fixtures(names: &[&str]) -> TestDir {
    let t = TestDir::new();
    for n in names {
        t.copy_fixture(n);
    }
    t
}

fn team_tokens(m: &Value) -> Vec<(String, u64)> {
    m["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["team"].as_str().unwrap().to_string(),
                i["tokens"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every writer's file of `fixtures/writers/rows.csv` closes the same
/// month: typed timestamps (ms, us, ns; UTC, naive, America/New_York;
/// Spark's INT96), tokens as int32, uint32, int64, double, ids as
/// large_string and dictionary, SQL `NULL`s, DuckDB's timestamp text.
#[test]
fn every_writer_closes_the_same_month() {
    let t = fixtures(&["writers", "mini"]);
    let base = close(
        &t,
        &policy(r#""fixtures/writers/rows.csv""#, MINI_BILL),
        "2025-01",
        &[],
    );
    assert_eq!(base.code, 0, "{}", base.transcript());
    let want = month(&t, "2025-01");
    assert_eq!(
        team_tokens(&want),
        [
            ("copilot".to_string(), 504_000),
            ("search".to_string(), 394_000),
            ("support".to_string(), 284_500),
        ]
    );
    let inputs = &want["inputs"];
    assert_eq!(inputs["request_rows"], 12);
    assert_eq!(inputs["duplicates_dropped"], 2);
    assert_eq!(inputs["outside_period"], 2);
    assert_eq!(inputs["requests_used"], 8);
    assert_eq!(inputs["quarantined_requests"], 0);
    for file in [
        "pyarrow_ts-ms-utc_int64.parquet",
        "pyarrow_ts-us-naive_int32.parquet",
        "pyarrow_ts-ns-newyork_uint32.parquet",
        "pyarrow_int96_float64.parquet",
        "pyarrow_large-string.parquet",
        "pyarrow_dictionary.parquet",
        "duckdb_timestamptz.parquet",
        "duckdb_nulls-NULL.csv",
        "duckdb_timestamptz_nulls-NULL.csv",
        "pyarrow_nulls-empty.csv",
        "duckdb_rfc3339.jsonl",
    ] {
        let out = close(
            &t,
            &policy(&format!("\"fixtures/writers/{file}\""), MINI_BILL),
            "2025-01",
            &["--force"],
        );
        assert_eq!(out.code, 0, "{file}: {}", out.transcript());
        let got = month(&t, "2025-01");
        assert_eq!(got["inputs"], want["inputs"], "{file}");
        assert_eq!(got["invoices"], want["invoices"], "{file}");
        assert_eq!(got["unattributed"], want["unattributed"], "{file}");
    }
}

/// The same rows, written by Polars in each timestamp unit and zone and
/// each integer width, and as text, with a duplicate: the same month.
#[test]
fn polars_physical_types_close_the_same_month() {
    use polars::prelude::*;
    let t = fixtures(&["mini"]);
    let ids = ["p1", "p2", "p1", "p3"];
    // 2025-01-03T10:00Z, 2025-01-04T23:30Z, the duplicate, 2025-01-31T23:30Z.
    let micros: [i64; 4] = [
        1_735_898_400_000_000,
        1_736_033_400_000_000,
        1_735_898_400_000_000,
        1_738_366_200_000_000,
    ];
    let write = |name: &str, mut df: DataFrame| {
        let path = t.path().join("logs").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(&mut f).finish(&mut df).unwrap();
    };
    let frame = |ts: Column, tokens: [Column; 2]| -> DataFrame {
        let n = ids.len();
        let s = |name: &str, v: &str| Column::new(name.into(), vec![v; n]);
        let [input, output] = tokens;
        DataFrame::new(
            n,
            vec![
                Column::new("request_id".into(), ids.to_vec()),
                ts,
                s("provider", "openai"),
                s("model", "gpt-4o"),
                s("billing_scope", "proj_a"),
                s("team", "support"),
                s("use_case", "tickets"),
                input,
                output,
            ],
        )
        .unwrap()
    };
    let ints = |name: &str| Column::new(name.into(), [1000i64, 2000, 1000, 3000].to_vec());
    let variants: Vec<(String, DataFrame)> = [
        TimeUnit::Milliseconds,
        TimeUnit::Microseconds,
        TimeUnit::Nanoseconds,
    ]
    .into_iter()
    .flat_map(|unit| {
        [None, Some("UTC"), Some("Asia/Kolkata")]
            .into_iter()
            .map(move |tz| (unit, tz))
    })
    .map(|(unit, tz)| {
        let per = match unit {
            TimeUnit::Milliseconds => 1_000i64,
            TimeUnit::Microseconds => 1,
            TimeUnit::Nanoseconds => -1_000,
        };
        let values: Vec<i64> = micros
            .iter()
            .map(|&us| if per > 0 { us / per } else { us * -per })
            .collect();
        let ts = Column::new("timestamp".into(), values)
            .cast(&DataType::Datetime(
                unit,
                tz.map(|z| TimeZone::opt_try_new(Some(z)).unwrap().unwrap()),
            ))
            .unwrap();
        (
            format!(
                "ts-{unit:?}-{}.parquet",
                tz.unwrap_or("naive").replace('/', "_")
            ),
            frame(ts, [ints("input_tokens"), ints("output_tokens")]),
        )
    })
    .chain(
        [
            DataType::Int32,
            DataType::UInt32,
            DataType::UInt64,
            DataType::Float64,
            DataType::String,
        ]
        .into_iter()
        .map(|dt| {
            let ts = Column::new(
                "timestamp".into(),
                [
                    "2025-01-03T10:00:00Z",
                    "2025-01-05T01:30:00+02:00",
                    "2025-01-03T10:00:00Z",
                    "2025-01-31T23:30:00",
                ]
                .to_vec(),
            );
            let cast = |c: Column| c.cast(&dt).unwrap();
            (
                format!("tokens-{dt}.parquet"),
                frame(
                    ts,
                    [cast(ints("input_tokens")), cast(ints("output_tokens"))],
                ),
            )
        }),
    )
    .collect();
    let mut first: Option<Value> = None;
    for (name, df) in variants {
        write(&name, df);
        let out = close(
            &t,
            &policy(&format!("\"logs/{name}\""), MINI_BILL),
            "2025-01",
            &["--force"],
        );
        assert_eq!(out.code, 0, "{name}: {}", out.transcript());
        let m = month(&t, "2025-01");
        assert_eq!(m["inputs"]["duplicates_dropped"], 1, "{name}");
        assert_eq!(m["inputs"]["requests_used"], 3, "{name}");
        assert_eq!(m["inputs"]["quarantined_requests"], 0, "{name}");
        match &first {
            None => first = Some(m),
            Some(want) => assert_eq!(m["invoices"], want["invoices"], "{name}"),
        }
    }
}

/// A quiet day's export is no error: empty files of every request format
/// leave the month as it is; an empty bill is an exception.
#[test]
fn empty_exports_change_nothing_and_never_panic() {
    let t = fixtures(&["mini", "empty"]);
    let mini_requests = r#""fixtures/mini/requests/*.csv""#;
    let base = close(&t, &policy(mini_requests, MINI_BILL), "2025-01", &[]);
    assert_eq!(base.code, 0, "{}", base.transcript());
    let want = month(&t, "2025-01");
    for (file, format) in [
        ("litellm_spendlogs_header-only.csv", "litellm"),
        ("litellm_spendlogs_empty.json", "litellm"),
        ("empty.jsonl", "otel"),
        ("otlp_no-genai-spans.jsonl", "otel"),
        ("canonical_header-only.csv", "canonical"),
        ("canonical_zero-rows.parquet", "canonical"),
    ] {
        for given in [true, false] {
            let source = if given {
                format!(r#"{{ url = "fixtures/empty/{file}", format = "{format}" }}"#)
            } else {
                format!("\"fixtures/empty/{file}\"")
            };
            let out = close(
                &t,
                &policy(&format!("{mini_requests}, {source}"), MINI_BILL),
                "2025-01",
                &["--force"],
            );
            // Told the format, or one we can tell from the file: closes as
            // before. An empty file that says nothing of what it is may be
            // refused — with exit 1 naming it, never a panic.
            if given || out.code != 1 {
                assert_eq!(
                    out.code,
                    0,
                    "{file} ({format}, given: {given}): {}",
                    out.transcript()
                );
                let m = month(&t, "2025-01");
                assert_eq!(m["invoices"], want["invoices"], "{file}");
                assert_eq!(m["billed_total"], want["billed_total"], "{file}");
            } else {
                assert!(out.stderr.contains(file), "{file}: {}", out.transcript());
            }
        }
    }
    let out = close(
        &t,
        &policy(
            mini_requests,
            &format!(
                r#"{MINI_BILL}, {{ url = "fixtures/empty/focus_header-only.csv", format = "focus" }}"#
            ),
        ),
        "2025-01",
        &["--force"],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        t.read("out/2025-01/exceptions.csv")
            .contains("bill_without_rows,,,,,fixtures/empty/focus_header-only.csv,`fixtures/empty/focus_header-only.csv` holds no bill rows"),
        "{}",
        t.read("out/2025-01/exceptions.csv")
    );
}

/// A native AWS CUR, Azure cost details or OCI cost report is named for
/// what it is, with how to export FOCUS instead.
#[test]
fn native_cloud_exports_are_named_with_how_to_export_focus() {
    let t = fixtures(&["mini", "native-exports"]);
    for (file, what) in [
        ("aws_cur_legacy.csv", "AWS Cost and Usage Report (CUR)"),
        ("aws_cur2.csv", "AWS Cost and Usage Report (CUR)"),
        (
            "azure_ea_cost_details.csv",
            "Azure cost details (EA / MCA usage details)",
        ),
        ("oci_cost_report.csv", "Oracle Cloud (OCI) cost report"),
    ] {
        let out = close(
            &t,
            &policy(
                r#""fixtures/mini/requests/*.csv""#,
                &format!("{{ url = \"fixtures/native-exports/{file}\" }}"),
            ),
            "2025-01",
            &[],
        );
        assert_eq!(out.code, 1, "{file}: {}", out.transcript());
        assert!(
            out.stderr.starts_with(&format!(
                "error: fixtures/native-exports/{file}: this is a native {what} export, not FOCUS; found `"
            )),
            "{file}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("hint: export FOCUS 1.x instead: "),
            "{}",
            out.stderr
        );
        assert!(!t.exists("out/2025-01/manifest.json"));
    }
}

/// Page 1 of an API export says more follow; without page 2 the month is
/// missing money: an exception that trips `--fail-on exceptions`, and the
/// month does not tie. With page 2 it does.
#[test]
fn truncated_api_page_sets_do_not_tie() {
    let t = fixtures(&["openai", "anthropic", "api-pages"]);
    for (fixture, period, first, second) in [
        (
            "openai",
            "2025-04",
            "fixtures/api-pages/openai_costs_2025-04_page1.json",
            "fixtures/api-pages/openai_costs_2025-04_page2.json",
        ),
        (
            "anthropic",
            "2025-10",
            "fixtures/api-pages/anthropic_cost_report_2025-10_page1.json",
            "fixtures/api-pages/anthropic_cost_report_2025-10_page2.json",
        ),
    ] {
        let requests = format!("\"fixtures/{fixture}/requests/*\"");
        let with = |bills: &str| {
            policy(&requests, bills).replace(
                "fixtures/mini/model-catalog.json",
                &format!("fixtures/{fixture}/model-catalog.json"),
            )
        };
        let text = with(&format!("{{ url = \"{first}\" }}"));
        let out = close(&t, &text, period, &["--fail-on", "exceptions", "--force"]);
        assert_eq!(out.code, 4, "{fixture}: {}", out.transcript());
        assert!(
            out.stdout.contains("ties to the bill: NO"),
            "{}",
            out.stdout
        );
        let exceptions = t.read(&format!("out/{period}/exceptions.csv"));
        assert!(
            exceptions.contains(&format!(
                "truncated_export,,,,,{first},\"`{first}` page 1 says `has_more: true`"
            )),
            "{fixture}: {exceptions}"
        );
        let m = month(&t, period);
        assert_eq!(m["ties_to_bill"], false);

        let both = with(&format!(
            "{{ url = \"{first}\" }}, {{ url = \"{second}\" }}"
        ));
        let out = close(&t, &both, period, &["--force"]);
        assert_eq!(out.code, 0, "{fixture}: {}", out.transcript());
        assert!(
            !t.read(&format!("out/{period}/exceptions.csv"))
                .contains("truncated_export")
        );
    }
}

/// The FinOps Foundation's FOCUS 1.0 sample holds a whole cloud bill:
/// compute, storage and networking are counted and shown once, never
/// billed; only the AI and machine learning rows are LLM spend.
#[test]
fn focus_sample_keeps_other_cloud_services_out_of_the_month() {
    let t = fixtures(&["mini", "focus-sample"]);
    let sample = r#"{ url = "fixtures/focus-sample/focus_sample_excerpt.csv", format = "focus" }"#;
    // The sample's charge periods are September 2024; `team:search` would
    // put anything unattributed on search's invoice.
    let text = policy(r#""fixtures/mini/requests/*.csv""#, sample)
        + "[reconciliation]\nunattributed = \"team:search\"\n[teams.search]\nname = \"Search\"\n";
    let out = close(&t, &text, "2024-09", &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let m = month(&t, "2024-09");
    // 35 rows: 9 Azure Machine Learning rows (ServiceCategory "AI and
    // Machine Learning") are AI spend; EC2, S3, load balancers, CloudWatch,
    // Oracle compute, an EC2 credit, AKS, … are not.
    assert_eq!(m["other_services_rows"], 26, "{m}");
    assert!(
        out.stdout.contains("not LLM spend: 26 bill rows"),
        "{}",
        out.stdout
    );
    let summary = t.read("out/2024-09/summary.html");
    assert!(
        summary.contains("of other cloud services in the same exports"),
        "{summary}"
    );
    // The policy narrows it: Azure ML is no LLM service.
    let narrow = sample.replace(
        "format = \"focus\"",
        "format = \"focus\", exclude_services = [\"Azure Machine Learning\"]",
    );
    let out = close(
        &t,
        &policy(r#""fixtures/mini/requests/*.csv""#, &narrow),
        "2024-09",
        &["--force"],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    let m = month(&t, "2024-09");
    assert_eq!(m["other_services_rows"], 35, "{m}");
    assert_eq!(m["billed_total"], "0.00");
    assert_eq!(m["other_billed_total"], "0.00");
    let invoices = m["invoices"].to_string();
    for service in [
        "Amazon Elastic Compute Cloud",
        "Amazon Simple Storage Service",
        "Elastic Load Balancing",
    ] {
        assert!(!invoices.contains(service), "{service} on an invoice");
    }
}

/// December's bill saved under January's name: no row of the period, so
/// nothing of it is "billed 0.00, closes cleanly" — an exception naming
/// the rows read and their days, and `validate` says the month does not tie.
#[test]
fn a_bill_of_another_month_is_named_and_does_not_tie() {
    let t = fixtures(&["mini"]);
    let december = t
        .read("fixtures/mini/billing/focus-2025-01.csv")
        .replace("2025-01-", "2024-12-")
        .replace("2025-02-01", "2025-01-01");
    t.write("fixtures/mini/billing/focus-2025-01.csv", &december);
    t.write(
        "policy.toml",
        &policy(r#""fixtures/mini/requests/*.csv""#, MINI_BILL),
    );
    let out = t.run(&["validate", "--config", "policy.toml", "--period", "2025-01"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.starts_with(
            "checked: 2025-01 does NOT tie to the provider's bills (nothing was written)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "`fixtures/mini/billing/focus-2025-01.csv`: 8 rows read, none in 2025-01 (they run from 2024-12-03 to 2024-12-31); is this the right month's bill?"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("closes cleanly"));
}

/// A rejected bill row (cost `12;50`) means the split is not the
/// provider's invoice: the month does not tie, the summary lists the row
/// with its amount as written, and the quarantine keeps the whole row.
#[test]
fn a_rejected_bill_row_breaks_the_tie_and_is_kept_whole() {
    let t = fixtures(&["mini"]);
    let out = close(
        &t,
        &policy(r#""fixtures/mini/requests/*.csv""#, MINI_BILL),
        "2025-01",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains(
            "ties to the bill: NO\n    - 1 rejected bill row (see quarantine/billing.csv)"
        ),
        "{}",
        out.stdout
    );
    let m = month(&t, "2025-01");
    assert_eq!(m["ties_to_bill"], false);
    assert_eq!(m["rejected_bill_rows"][0]["cost"], "12;50");
    assert_eq!(
        m["rejected_bill_rows"][0]["source"],
        "fixtures/mini/billing/focus-2025-01.csv:8"
    );
    let q = t.read("out/2025-01/quarantine/billing.csv");
    let mut r = csv::Reader::from_reader(q.as_bytes());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["source", "row", "column", "reason", "cost", "record"]
    );
    let row = r.records().next().unwrap().unwrap();
    assert_eq!(&row[4], "12;50");
    let record: Value = serde_json::from_str(&row[5]).unwrap();
    assert_eq!(record["ChargeDescription"], "bad cost");
    assert_eq!(record["BilledCost"], "12;50");
    assert_eq!(record["ChargePeriodStart"], "2025-01-10T00:00:00Z");
    let summary = t.read("out/2025-01/summary.html");
    assert!(
        summary.contains("Rejected bill rows (not in any total)"),
        "{summary}"
    );
}

/// A quarantined request keeps every canonical column as read, so it can
/// be fixed and replayed when its source object is gone; a typed
/// timestamp is kept as RFC 3339.
#[test]
fn quarantined_requests_keep_their_values() {
    let t = fixtures(&["mini", "writers"]);
    let out = close(
        &t,
        &policy(r#""fixtures/mini/requests/*.csv""#, MINI_BILL),
        "2025-01",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    let q = t.read("out/2025-01/quarantine/requests.csv");
    let first = q.lines().next().unwrap();
    assert_eq!(
        first,
        "source,row,column,reason,request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status"
    );
    assert!(
        q.contains("fixtures/mini/requests/gateway-b.csv,2,timestamp,`timestamp` is not an RFC 3339 time: `yesterday`,r07,yesterday,openai,gpt-4o,proj_a,search,query rewrite,10,0,0,10,ok"),
        "{q}"
    );
    // A model unknown to the catalog in a Parquet log with typed times.
    let text = std::fs::read(
        t.path()
            .join("fixtures/writers/pyarrow_ts-ms-utc_int64.parquet"),
    )
    .unwrap();
    std::fs::write(t.path().join("typed.parquet"), text).unwrap();
    let mut catalog: Value =
        serde_json::from_str(&t.read("fixtures/mini/model-catalog.json")).unwrap();
    catalog["models"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["model"] != "gpt-4o-mini");
    t.write("catalog-without-mini.json", &catalog.to_string());
    let text = policy(r#""typed.parquet""#, MINI_BILL).replace(
        "fixtures/mini/model-catalog.json",
        "catalog-without-mini.json",
    );
    let out = close(&t, &text, "2025-01", &["--force"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let q = t.read("out/2025-01/quarantine/requests.csv");
    assert!(
        q.contains("typed.parquet,4,model,model `gpt-4o-mini` of provider `openai` is not in the catalog,w04,2025-01-08T10:15:00.250Z,openai,gpt-4o-mini,proj_a,search,query rewrite,300000,,0,20000,ok"),
        "{q}"
    );
}

/// `NULL` means no value in every CSV: a LiteLLM export's `team_id` of
/// `NULL` is untagged, not a team called `NULL`.
#[test]
fn null_spelled_out_is_no_value_in_every_csv() {
    let t = fixtures(&["litellm"]);
    let path = "fixtures/litellm/spendlogs/spendlogs-2025-01.csv";
    let text = t
        .read(path)
        .replace(",support,,,10.0.3.17", ",NULL,NULL,None,10.0.3.17");
    assert_ne!(
        text,
        t.read(path),
        "the fixture changed; update the replacement"
    );
    t.write(path, &text);
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/litellm/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let m = month(&t, "2025-01");
    let teams: Vec<String> = team_tokens(&m).into_iter().map(|(t, _)| t).collect();
    assert!(
        !teams.iter().any(|t| t == "NULL" || t == "None"),
        "{teams:?}"
    );
}

/// `[teams.suport]` without usage while the logs say `support`: a typo
/// that invoices support under the defaults, named with "did you mean".
#[test]
fn a_policy_team_one_typo_away_from_the_logs_is_an_exception() {
    let t = fixtures(&["mini"]);
    let text = t
        .read("fixtures/mini/chargeback.toml")
        .replace("[teams.support]", "[teams.suport]");
    t.write("fixtures/mini/chargeback.toml", &text);
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let exceptions = t.read("out/2025-01/exceptions.csv");
    assert!(
        exceptions.contains("team_without_usage,,,,suport,,\"team `suport` is in [teams] but has no usage; did you mean `support` (in the logs with 2 requests, invoiced under the defaults)?\""),
        "{exceptions}"
    );
    let summary = t.read("out/2025-01/summary.html");
    assert!(summary.contains("policy team without usage"), "{summary}");
}

/// A CSV that ends inside a quoted field (a truncated export) is refused,
/// naming the file, before Polars' reader (which reads past the end of
/// such a buffer) sees it. Found by fuzz.rs.
#[test]
fn a_csv_ending_inside_a_quote_is_refused_by_name() {
    let t = fixtures(&["mini", "bad"]);
    let out = close(
        &t,
        &policy(
            r#""fixtures/mini/requests/*.csv""#,
            r#"{ url = "fixtures/bad/csv-unclosed-quote.csv", format = "focus" }"#,
        ),
        "2025-01",
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: fixtures/bad/csv-unclosed-quote.csv: the CSV ends inside a quoted field: its `\"` do not pair up\n\
         hint: the file is truncated or a quote is not closed; export it again (a `\"` inside a quoted field is written `\"\"`)\n"
    );
    assert!(!t.exists("out/2025-01/manifest.json"));
}

/// A FOCUS export written as Parquet with typed times (`ChargePeriodStart`
/// a datetime in UTC or in New York time, `BillingPeriodStart` one without
/// a zone, in every unit) closes the same month as its CSV.
#[test]
fn focus_parquet_with_typed_times_closes_like_its_csv() {
    use polars::prelude::*;
    let t = fixtures(&["mini"]);
    let csv_bill = "fixtures/mini/billing/focus-2025-01.csv";
    let base = close(
        &t,
        &policy(r#""fixtures/mini/requests/*.csv""#, MINI_BILL),
        "2025-01",
        &[],
    );
    assert_eq!(base.code, 0, "{}", base.transcript());
    let want = month(&t, "2025-01");
    for unit in [
        TimeUnit::Milliseconds,
        TimeUnit::Microseconds,
        TimeUnit::Nanoseconds,
    ] {
        let mut df = CsvReadOptions::default()
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(t.path().join(csv_bill)))
            .unwrap()
            .finish()
            .unwrap();
        let typed = |c: &str, tz: Option<&str>| {
            col(c)
                .str()
                .replace_all(lit("Z"), lit(""), true)
                .str()
                .to_datetime(
                    Some(unit),
                    tz.map(|z| TimeZone::opt_try_new(Some(z)).unwrap().unwrap()),
                    StrptimeOptions {
                        format: Some("%Y-%m-%dT%H:%M:%S".into()),
                        ..Default::default()
                    },
                    lit("raise"),
                )
                .alias(c)
        };
        // The same instants, stored in New York time in one variant.
        let zoned = |e: Expr| match unit {
            TimeUnit::Nanoseconds => e
                .dt()
                .convert_time_zone(
                    TimeZone::opt_try_new(Some("America/New_York"))
                        .unwrap()
                        .unwrap(),
                )
                .alias("ChargePeriodStart"),
            _ => e,
        };
        df = df
            .lazy()
            .with_columns([
                zoned(typed("ChargePeriodStart", Some("UTC"))),
                typed("ChargePeriodEnd", Some("UTC")),
                typed("BillingPeriodStart", None),
            ])
            .collect()
            .unwrap();
        let path = t.path().join("typed-bill/focus-2025-01.parquet");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let out = close(
            &t,
            &policy(
                r#""fixtures/mini/requests/*.csv""#,
                r#"{ url = "typed-bill/focus-{period}.parquet", format = "focus" }"#,
            ),
            "2025-01",
            &["--force"],
        );
        assert_eq!(out.code, 0, "{unit:?}: {}", out.transcript());
        let got = month(&t, "2025-01");
        assert_eq!(got["invoices"], want["invoices"], "{unit:?}");
        assert_eq!(got["billed_total"], want["billed_total"], "{unit:?}");
        assert_eq!(
            got["other_billed_total"], want["other_billed_total"],
            "{unit:?}"
        );
        assert_eq!(
            got["rejected_bill_rows"].as_array().unwrap().len(),
            1,
            "{unit:?}"
        );
    }
}

/// An amount no bill can hold (beyond ±10¹⁵) is a rejected bill row with
/// the bound in its reason, never an overflow later in the month.
#[test]
fn an_absurd_bill_amount_is_rejected_by_its_bound() {
    let t = fixtures(&["mini"]);
    let bill = std::fs::read_to_string(repo_root().join("fixtures/mini/billing/focus-2025-01.csv"))
        .unwrap();
    let mut lines: Vec<&str> = bill.lines().collect();
    let absurd = lines[1].replace(",20.00,", ",79228162514264337593543950335,");
    lines.push(&absurd);
    lines.push(&absurd);
    t.write("absurd/focus.csv", &(lines.join("\n") + "\n"));
    let out = close(
        &t,
        &policy(
            r#""fixtures/mini/requests/*.csv""#,
            r#"{ url = "absurd/focus.csv", format = "focus" }"#,
        ),
        "2025-01",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    let q = t.read("out/2025-01/quarantine/billing.csv");
    let mut r = csv::Reader::from_reader(q.as_bytes());
    let reasons: Vec<String> = r
        .records()
        .map(|row| row.unwrap()[3].to_string())
        .filter(|reason| reason.contains("beyond"))
        .collect();
    assert_eq!(
        reasons,
        ["`BilledCost`: `79228162514264337593543950335` is beyond ±1000000000000000, the largest amount chargeback adds up";
            2],
        "{q}"
    );
}

/// A token count no request has (over a billion) is quarantined with the
/// bound in its reason, on the plain path and on the path of rows whose
/// id repeats, so no sum of counts can leave a `u64`.
#[test]
fn an_absurd_token_count_is_quarantined_by_its_bound() {
    let t = fixtures(&["mini"]);
    let header = "request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status";
    let row = |id: &str, input: &str| {
        format!(
            "{id},2025-01-03T10:00:00Z,openai,gpt-4o,proj_a,search,query rewrite,{input},0,0,10,ok"
        )
    };
    t.write(
        "absurd/requests.csv",
        &[
            header.to_string(),
            row("big-1", "5000000000"),
            row("big-2", "18446744073709551615"),
            row("twice", "5000000000"),
            row("twice", "5000000000"),
            row("fine", "1000000000"),
        ]
        .join("\n"),
    );
    let out = close(
        &t,
        &policy(r#""absurd/requests.csv""#, MINI_BILL),
        "2025-01",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    let q = t.read("out/2025-01/quarantine/requests.csv");
    let mut r = csv::Reader::from_reader(q.as_bytes());
    let rows: Vec<(String, String)> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[1].to_string(), rec[3].to_string())
        })
        .collect();
    let over = |v: &str| {
        format!(
            "`input_tokens` is `{v}`, more than 1000000000 tokens, the most one request may count"
        )
    };
    assert_eq!(
        rows,
        [
            ("1".to_string(), over("5000000000")),
            // Beyond i64, so not read as a count at all.
            (
                "2".to_string(),
                "`input_tokens` is not a whole number: `18446744073709551615`".to_string(),
            ),
            ("3".to_string(), over("5000000000")),
            ("4".to_string(), over("5000000000")),
        ],
        "{q}"
    );
    let m = month(&t, "2025-01");
    assert_eq!(m["inputs"]["requests_used"], 1);
}

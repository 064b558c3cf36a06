//! Gateway logs as they really come: LiteLLM SpendLogs exports
//! (fixtures/litellm) and OpenTelemetry GenAI spans (fixtures/otel), run
//! through the real binary against hand-checked numbers.
//!
//! By hand, LiteLLM (bill 26.30): gpt-4o on 2025-01-03 bills 15.00 for 3M
//! uncached input, 5.00 for 2M cache reads, 4.50 for 300k output. Support's
//! `prompt_tokens` 2M hold 1M cache reads (1M input), search's 3M hold 1M
//! (2M input): support owes 5.00 + 2.50 + 1.50, search 10.00 + 2.50 + 3.00.
//! Search's second request was a LiteLLM cache hit (no provider tokens).
//! Support's failed gpt-4o-mini request is billed 0.15. Copilot's Anthropic
//! request (JSON export, team from the key's alias) is 100k input + 1M
//! cache reads + 200k cache writes + 20k output: all of the 1.65 bill.
//! So support 9.15, search 15.50, copilot 1.65; nothing unattributed.
//!
//! OpenTelemetry (bill 23.80): the same shape without LiteLLM's cache hit,
//! with support's chat reading no cache: support 5.00 + 1.50 + 0.15 = 6.65,
//! search 10.00 + 2.50 + 3.00 = 15.50, copilot 1.65. The agent span above
//! search's chat and the HTTP span under support's are not requests.

use serde_json::Value;

use crate::util::{Output, TestDir};

const LITELLM: &str = "fixtures/litellm/chargeback.toml";
const OTEL: &str = "fixtures/otel/chargeback.toml";

fn run(fixture: &str, config: &str) -> (TestDir, Output) {
    let t = TestDir::with_fixture(fixture);
    let out = t.run(&["run", "--config", config, "--period", "2025-01"]);
    (t, out)
}

fn month(t: &TestDir) -> Value {
    serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap()
}

fn invoice<'a>(month: &'a Value, team: &str) -> &'a Value {
    month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == team)
        .unwrap_or_else(|| panic!("no invoice for {team}"))
}

fn line<'a>(invoice: &'a Value, model: &str, use_case: &str) -> &'a Value {
    invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["model"] == model && l["use_case"] == use_case)
        .unwrap_or_else(|| panic!("no line {model} · {use_case} in {}", invoice["team"]))
}

#[test]
fn litellm_spendlogs_month_hand_checked() {
    let (t, out) = run("litellm", LITELLM);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let m = month(&t);
    assert_eq!(m["billed_total"], "26.30");
    assert_eq!(m["estimated_total"], "0.00");
    assert_eq!(m["unattributed"], "0.00");
    assert_eq!(m["ties_to_bill"], true);

    let support = invoice(&m, "support");
    assert_eq!(support["usage_cost"], "9.15");
    assert_eq!(line(support, "gpt-4o", "tickets")["amount"], "9.00");
    // 1M input + 1M cache reads + 100k output: cache reads are not input.
    assert_eq!(line(support, "gpt-4o", "tickets")["tokens"], 2_100_000);
    assert_eq!(line(support, "gpt-4o-mini", "triage")["amount"], "0.15");

    let search = invoice(&m, "search");
    assert_eq!(search["usage_cost"], "15.50");
    // The LiteLLM cache hit is a request with no provider tokens.
    assert_eq!(search["requests"], 2);
    assert_eq!(search["tokens"], 3_200_000);

    let copilot = invoice(&m, "copilot");
    assert_eq!(copilot["usage_cost"], "1.65");
    assert_eq!(copilot["tokens"], 1_320_000);
    assert_eq!(
        line(copilot, "claude-3-5-sonnet", "completions")["amount"],
        "1.65"
    );

    assert!(
        m["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["team"] != "untagged"),
        "every logged request names its team"
    );
    assert_eq!(m["inputs"]["request_rows"], 7);
    assert_eq!(m["inputs"]["quarantined_requests"], 2);
}

#[test]
fn litellm_quarantine_names_file_row_and_reason() {
    let (t, out) = run("litellm", LITELLM);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(
        t.read("out/2025-01/quarantine/requests.csv"),
        "source,row,column,reason,request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status\n\
         fixtures/litellm/spendlogs/spendlogs-2025-01-anthropic.json,2,input_tokens,`input_tokens` is negative: `-200`,chatcmpl-7e1b2c3d-copilot-02,2025-01-05T09:00:00.000000Z,anthropic,claude-3-5-sonnet-20241022,wrkspc_core,copilot,completions,-200,300,0,10,ok\n\
         fixtures/litellm/spendlogs/spendlogs-2025-01.csv,5,input_tokens,`input_tokens` is not a whole number: `n/a`,chatcmpl-AkQ4support03,2025-01-04 10:00:00.000,openai,gpt-4o,proj_core,support,,n/a,0,0,10,ok\n"
    );
}

#[test]
fn otel_spans_month_hand_checked() {
    let (t, out) = run("otel", OTEL);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let m = month(&t);
    assert_eq!(m["billed_total"], "23.80");
    assert_eq!(m["estimated_total"], "0.00");
    assert_eq!(m["unattributed"], "0.00");
    assert_eq!(m["ties_to_bill"], true);

    let support = invoice(&m, "support");
    assert_eq!(support["usage_cost"], "6.65");
    assert_eq!(line(support, "gpt-4o", "tickets")["amount"], "6.50");
    // The failed span of an older instrumentation (`gen_ai.system`,
    // `prompt_tokens`), its team from the resource.
    assert_eq!(line(support, "gpt-4o-mini", "triage")["amount"], "0.15");

    let search = invoice(&m, "search");
    assert_eq!(search["usage_cost"], "15.50");
    assert_eq!(search["requests"], 1, "the agent span is not a request");
    assert_eq!(search["tokens"], 3_200_000);

    let copilot = invoice(&m, "copilot");
    assert_eq!(copilot["usage_cost"], "1.65");
    assert_eq!(copilot["tokens"], 1_320_000);

    assert_eq!(m["inputs"]["quarantined_requests"], 1);
    assert_eq!(
        t.read("out/2025-01/quarantine/requests.csv"),
        "source,row,column,reason,request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status\n\
         fixtures/otel/spans/flat-2025-01.jsonl,3,output_tokens,`output_tokens` is not a whole number: `many`,0x3c4d5e6f708192a3,2025-01-04T10:00:00Z,openai,gpt-4o,,search,,10,,,many,ok\n"
    );
}

/// The same month with every `format` left out of the policy.
fn detected(fixture: &str, config: &str, explicit: &[&str]) {
    let (t, out) = run(fixture, config);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let given = t.read("out/2025-01/invoices.json");
    let mut policy = t.read(config);
    for url in explicit {
        policy = policy.replace(
            &format!("{{ url = \"{url}\", format = \"{fixture}\" }}"),
            &format!("\"{url}\""),
        );
    }
    assert!(
        !policy.contains(&format!("format = \"{fixture}\"")),
        "{policy}"
    );
    t.write("detected.toml", &policy);
    let out = t.run(&[
        "run",
        "--config",
        "detected.toml",
        "--period",
        "2025-01",
        "--out",
        "out-detected/",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(t.read("out-detected/invoices.json"), given);
}

#[test]
fn gateway_logs_are_detected_without_a_format() {
    detected(
        "litellm",
        LITELLM,
        &["fixtures/litellm/spendlogs/spendlogs-{period}.csv"],
    );
    detected("otel", OTEL, &["fixtures/otel/spans/otlp-{period}.jsonl"]);
}

#[test]
fn a_litellm_export_without_its_columns_names_found_and_expected() {
    let t = TestDir::with_fixture("litellm");
    t.write(
        "fixtures/litellm/spendlogs/spendlogs-2025-01.csv",
        "request_id,startTime,model,tokens\nr1,2025-01-03 10:00:00,gpt-4o,10\n",
    );
    let out = t.run(&["run", "--config", LITELLM, "--period", "2025-01"]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: fixtures/litellm/spendlogs/spendlogs-2025-01.csv: not a LiteLLM SpendLogs export: \
         missing `custom_llm_provider`, `prompt_tokens`, `completion_tokens`; found `request_id`, \
         `startTime`, `model`, `tokens`\n\
         hint: a SpendLogs export needs `request_id`, `startTime`, `model` (or `model_group`), \
         `custom_llm_provider`, `prompt_tokens` and `completion_tokens`; export the \
         `LiteLLM_SpendLogs` table with its column names, or set `format` in the policy\n"
    );
    assert!(!t.exists("out"), "nothing is published on bad input");
}

#[test]
fn unreadable_spans_name_the_line() {
    let t = TestDir::with_fixture("otel");
    let path = "fixtures/otel/spans/otlp-2025-01.jsonl";
    let spans = t.read(path);
    t.write(path, &format!("{spans}{{\"resourceSpans\": [\n"));
    let out = t.run(&["run", "--config", OTEL, "--period", "2025-01"]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.starts_with(&format!(
            "error: {path}:4:0: not valid JSON: EOF while parsing"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: spans are JSON lines"),
        "{}",
        out.stderr
    );
}

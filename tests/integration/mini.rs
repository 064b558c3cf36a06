//! The mini month (fixtures/mini): small enough to check by hand.
//!
//! By hand: gpt-4o on 2025-01-03 bills 20.00 input (4M tokens) and 6.00
//! output (400k); support logged 1M/100k of it, search 3M/300k, so support
//! owes 5.00 + 1.50 and search 15.00 + 4.50. gpt-4o-mini on 01-04 bills
//! 0.30 for 2M tokens of which the logs show 1M (a failed request, billed
//! by policy): 0.15 to support, 0.15 unattributed. Anthropic sent no bill:
//! copilot's two sonnet requests (one at 2025-02-01T00:30+01:00, which is
//! still January in UTC) are estimated at 0.45 each. Untagged usage is
//! 0.0002 exact, 0.00 rounded.

use serde_json::Value;

use crate::util::TestDir;

fn run_mini(extra: &[&str]) -> (TestDir, crate::util::Output) {
    let t = TestDir::with_fixture("mini");
    let mut args = vec![
        "run",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
    ];
    args.extend_from_slice(extra);
    let out = t.run(&args);
    (t, out)
}

fn invoice<'a>(month: &'a Value, team: &str) -> &'a Value {
    month["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["team"] == team)
        .unwrap_or_else(|| panic!("no invoice for {team}"))
}

#[test]
fn hand_checked_numbers() {
    let (t, out) = run_mini(&[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    assert_eq!(month["billed_total"], "26.30");
    assert_eq!(month["estimated_total"], "0.90");
    assert_eq!(month["unattributed"], "0.15");
    assert_eq!(month["attributed_total"], "27.05");
    // The split is exact, but the bill's `12;50` row was rejected: the
    // month does not tie to OpenAI's invoice.
    assert_eq!(month["ties_to_bill"], false);
    assert_eq!(
        month["tie_breaks"][0],
        "1 rejected bill row (see quarantine/billing.csv): the provider's invoice total is not what was split"
    );

    let support = invoice(&month, "support");
    assert_eq!(support["usage_cost"], "6.65");
    assert_eq!(support["markup"], "1.33");
    assert_eq!(support["fixed_fee"], "250.00");
    assert_eq!(support["total"], "257.98");
    assert_eq!(support["budget"]["status"], "warning");
    assert_eq!(support["invoice_number"], "MC-2025-01-support");

    let search = invoice(&month, "search");
    assert_eq!(search["usage_cost"], "19.50");
    assert_eq!(search["tier"], "experimental");
    assert_eq!(search["markup"], "9.75");
    assert_eq!(search["platform_fee"], "2.93");
    assert_eq!(search["total"], "32.18");
    assert_eq!(search["budget"]["status"], "ok");

    let copilot = invoice(&month, "copilot");
    assert_eq!(copilot["usage_cost"], "0.90");
    assert_eq!(copilot["estimated_cost"], "0.90");
    assert_eq!(copilot["total"], "0.90");

    let untagged = invoice(&month, "untagged");
    assert_eq!(untagged["usage_cost"], "0.00");
    assert_eq!(untagged["in_policy"], false);

    assert_eq!(month["other_billed_total"], "1.89");
    assert_eq!(month["inputs"]["duplicates_dropped"], 1);
    assert_eq!(month["inputs"]["quarantined_requests"], 4);
    assert_eq!(month["inputs"]["outside_period"], 1);
    assert_eq!(month["inputs"]["quarantined_billing_rows"], 1);
    assert_eq!(month["inputs"]["request_rows"], 12);
}

#[test]
fn outputs_snapshot() {
    let (t, out) = run_mini(&["--as-of", "2025-02-01"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    insta::assert_snapshot!("mini_stdout", out.transcript());
    insta::assert_snapshot!("mini_files", t.files("out/2025-01").join("\n"));
    for f in [
        "invoices.json",
        "ledger.csv",
        "reconciliation.csv",
        "exceptions.csv",
        "budgets.json",
        "quarantine/requests.csv",
        "quarantine/duplicates.csv",
        "quarantine/billing.csv",
    ] {
        insta::assert_snapshot!(
            format!("mini_{}", f.replace('/', "_")),
            t.read(&format!("out/2025-01/{f}"))
        );
    }
}

#[test]
fn rerun_is_byte_identical_and_manifest_lists_every_output() {
    let (t, out) = run_mini(&[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let files = t.files("out/2025-01");
    let first: Vec<Vec<u8>> = files
        .iter()
        .map(|f| t.read_bytes(&format!("out/2025-01/{f}")))
        .collect();
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 0);
    assert_eq!(t.files("out/2025-01"), files);
    for (f, bytes) in files.iter().zip(first) {
        assert_eq!(
            t.read_bytes(&format!("out/2025-01/{f}")),
            bytes,
            "{f} changed on rerun"
        );
    }
    let manifest: Value = serde_json::from_str(&t.read("out/2025-01/manifest.json")).unwrap();
    let listed: Vec<&str> = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| *f != "manifest.json")
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    for o in manifest["outputs"].as_array().unwrap() {
        let bytes = t.read_bytes(&format!("out/2025-01/{}", o["path"].as_str().unwrap()));
        use sha2::Digest;
        assert_eq!(o["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    }
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 3);
}

#[test]
fn fail_on_exceptions_exits_4_after_publishing() {
    let (t, out) = run_mini(&["--fail-on", "exceptions"]);
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert!(
        out.stderr
            .starts_with("error: --fail-on tripped after publishing: "),
        "{}",
        out.stderr
    );
    assert!(t.exists("out/2025-01/manifest.json"));
}

#[test]
fn fail_on_budget_trips_only_over_budget() {
    let (_, out) = run_mini(&["--fail-on", "budget"]);
    assert_eq!(
        out.code,
        0,
        "support is at warning, not critical: {}",
        out.transcript()
    );
    let t = TestDir::with_fixture("mini");
    let policy = t
        .read("fixtures/mini/chargeback.toml")
        .replace("budget = \"100.00\"", "budget = \"30.00\"");
    t.write("fixtures/mini/chargeback.toml", &policy);
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
        "--fail-on",
        "budget",
        "-q",
    ]);
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: --fail-on tripped after publishing: over budget: `search`\n"
    );
}

#[test]
fn out_flag_overrides_and_validate_writes_nothing() {
    let t = TestDir::with_fixture("mini");
    let out = t.run(&[
        "validate",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.starts_with(
            "checked: 2025-01 does NOT tie to the provider's bills (nothing was written)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(!t.exists("out"));
    let out = t.run(&[
        "run",
        "-c",
        "fixtures/mini/chargeback.toml",
        "-p",
        "2025-01",
        "--out",
        "elsewhere/jan",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(t.exists("elsewhere/jan/manifest.json"));
    assert!(!t.exists("out"));
}

#[test]
fn html_escapes_team_names() {
    let (t, _) = run_mini(&[]);
    let html = t.read("out/2025-01/invoices/search.html");
    assert!(html.contains("Search &lt;Relevance&gt; &amp; Ranking"));
    assert!(!html.contains("<Relevance>"));
    let summary = t.read("out/2025-01/summary.html");
    assert!(summary.contains("Search &lt;Relevance&gt; &amp; Ranking"));
    assert!(
        summary.contains("Does not tie to the provider's invoices"),
        "{summary}"
    );
}

#[test]
fn templates_can_be_overridden_and_errors_name_the_field() {
    let t = TestDir::with_fixture("mini");
    let policy = t.read("fixtures/mini/chargeback.toml").replace(
        "url = \"out/{period}/\"",
        "url = \"out/{period}/\"\ntemplates = \"branding\"",
    );
    t.write("fixtures/mini/chargeback.toml", &policy);
    let close = || {
        t.run(&[
            "run",
            "--config",
            "fixtures/mini/chargeback.toml",
            "--period",
            "2025-01",
        ])
    };
    t.write(
        "branding/invoice.html.hbs",
        "<h1>{{month.issuer.name}}</h1>\n<p>{{invoice.invoice_number}}: {{money invoice.total}}</p>\n",
    );
    let out = close();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(
        t.read("out/2025-01/invoices/support.html"),
        "<h1>Mini Corp AI Platform</h1>\n<p>MC-2025-01-support: 257.98</p>\n"
    );
    // The summary still uses the built-in template.
    assert!(
        t.read("out/2025-01/summary.html")
            .contains("Finance summary")
    );

    t.write(
        "branding/invoice.html.hbs",
        "<p>{{invoice.invoice_number}}</p>\n<p>{{invoice.po_number}}</p>\n",
    );
    std::fs::remove_dir_all(t.path().join("out")).unwrap();
    let out = close();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: branding/invoice.html.hbs:2:4: template error: the template uses `invoice.po_number`, which the invoice data does not have\n\
         hint: the fields a template may use are the keys of its data: invoices.json, `insights` (insights.json) and `whatif_json` (the what-if panel's data) for summary.html.hbs, `{ month: { period, currency, issuer, issue_date, due_date }, invoice, draft }` for invoice.html.hbs, `{ month, amendment, reason, note }` for note.html.hbs, compare.json for compare.html.hbs
"
    );
    assert!(
        !t.exists("out"),
        "nothing is published after a template error"
    );

    // An invoice sees the month's header, never the other teams' invoices.
    t.write(
        "branding/invoice.html.hbs",
        "<p>{{invoice.invoice_number}} {{month.issuer.name}} {{month.due_date}}</p>\n{{#each month.invoices}}{{team}}{{/each}}\n",
    );
    let out = close();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.starts_with(
            "error: branding/invoice.html.hbs:2:1: template error: the template uses `month.invoices`, which the invoice data does not have\n"
        ),
        "{}",
        out.transcript()
    );
}

#[test]
fn json_lines_logs_give_the_same_invoices_as_csv() {
    let t = TestDir::with_fixture("mini");
    let (_, csv_out) = run_mini(&[]);
    assert_eq!(csv_out.code, 0);
    // The clean rows of the mini month, as JSON lines.
    let jsonl = [
        r#"{"request_id":"r01","timestamp":"2025-01-03T10:00:00Z","provider":"openai","model":"gpt-4o","billing_scope":"proj_a","team":"support","use_case":"tickets","input_tokens":1000000,"output_tokens":100000}"#,
        r#"{"request_id":"r02","timestamp":"2025-01-03T11:00:00Z","provider":"openai","model":"gpt-4o-2024-08-06","billing_scope":"proj_a","team":"search","use_case":"query rewrite","input_tokens":3000000,"output_tokens":300000}"#,
        r#"{"request_id":"r03","timestamp":"2025-01-04T09:00:00Z","provider":"openai","model":"gpt-4o-mini","billing_scope":"proj_a","team":"support","use_case":"triage","input_tokens":1000000,"output_tokens":0,"status":"error"}"#,
    ]
    .join("\n");
    t.write("fixtures/mini/requests/gateway.jsonl", &(jsonl + "\n"));
    let policy = t.read("fixtures/mini/chargeback.toml").replace(
        "requests = [\"fixtures/mini/requests/*.csv\"]",
        "requests = [\"fixtures/mini/requests/gateway.jsonl\"]",
    );
    t.write("fixtures/mini/chargeback.toml", &policy);
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    assert_eq!(invoice(&month, "support")["usage_cost"], "6.65");
    assert_eq!(invoice(&month, "search")["usage_cost"], "19.50");
    assert_eq!(month["unattributed"], "0.15");
}

//! Exit codes and error texts, word for word, as the person fixing them
//! at 6 pm on close day reads them.

use crate::util::TestDir;

const MINI: &str = "fixtures/mini/chargeback.toml";

fn mini_with(policy_edit: impl Fn(String) -> String) -> TestDir {
    let t = TestDir::with_fixture("mini");
    t.copy_fixture("bad");
    let p = policy_edit(t.read(MINI));
    t.write(MINI, &p);
    t
}

#[test]
fn help_and_version_exit_0() {
    let t = TestDir::new();
    let out = t.run(&["--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Close a month of LLM spend"));
    assert!(out.stdout.contains("Exit codes: 0 ok"));
    let out = t.run(&["run", "--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("--fail-on <GATE>"));
    assert_eq!(t.run(&["--version"]).code, 0);
}

#[test]
fn usage_errors_exit_2() {
    let t = TestDir::with_fixture("mini");
    let out = t.run(&[]);
    assert_eq!(out.code, 2);
    let out = t.run(&["run", "--config", MINI]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert!(out.stderr.contains("--period <YYYY-MM>"));
    let out = t.run(&["run", "--config", MINI, "--period", "2025-13"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: `2025-13` is not a period, expected YYYY-MM such as `2025-01`\n\
         hint: or `--period previous` for the month before today (UTC)\n"
    );
    let out = t.run(&[
        "run",
        "--config",
        MINI,
        "--period",
        "2025-01",
        "--as-of",
        "01/02/2025",
    ]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: `--as-of 01/02/2025` is not a date\nhint: write it as YYYY-MM-DD\n"
    );
}

#[test]
fn missing_policy_exits_1() {
    let t = TestDir::new();
    let out = t.run(&["run", "--config", "nope.toml", "--period", "2025-01"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: nope.toml: no such file\nhint: check the `--config` path\n"
    );
}

#[test]
fn unknown_policy_key_names_key_and_line() {
    let t = TestDir::with_fixture("mini");
    t.copy_fixture("bad");
    let out = t.run(&[
        "validate",
        "--config",
        "fixtures/bad/policy-unknown-key.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.stderr, @r"
    error: fixtures/bad/policy-unknown-key.toml:10:1: unknown field `budjet`, expected one of `name`, `cost_center`, `model`, `markup`, `fixed_fee`, `platform_fee_rate`, `tier_mode`, `tiers`, `budget`, `alert_threshold`, `budget_basis`, `gl_account`, `outcome_rates`, `seats`, `seat_rate`
    hint: the policy's keys are in README.md, section “Policy (chargeback.toml)”
    ");
}

#[test]
fn float_money_in_policy_is_refused() {
    let t = mini_with(|p| p.replace("markup = \"0.20\"", "markup = 0.20"));
    let out = t.run(&["run", "--config", MINI, "--period", "2025-01"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: fixtures/mini/chargeback.toml:31:10: money and rates are strings: write `\"0.2\"`, not `0.2`\n\
         hint: the policy's keys are in README.md, section “Policy (chargeback.toml)”\n"
    );
    assert!(!t.exists("out"), "nothing is published on bad input");
}

#[test]
fn glob_matching_nothing_exits_1() {
    let t = mini_with(|p| p.replace("requests/*.csv", "requests/*.jsonl"));
    let out = t.run(&["run", "--config", MINI, "--period", "2025-01"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: fixtures/mini/requests/*.jsonl: the pattern matches no file\nhint: check the path in [sources] and the `--period` it was expanded with; relative paths are read from the working directory, not the policy's folder\n"
    );
}

#[test]
fn missing_billing_file_for_the_period_exits_1() {
    let t = TestDir::with_fixture("mini");
    let out = t.run(&["run", "--config", MINI, "--period", "2025-02"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: fixtures/mini/billing/focus-2025-02.csv: no such file\nhint: check the path in [sources] and the `--period` it was expanded with; relative paths are read from the working directory, not the policy's folder\n"
    );
    assert!(!t.exists("out"));
}

/// `--period previous` is the month before `--as-of`'s, or before today's
/// (UTC): the scheduled job's month, with the same bytes as naming it.
#[test]
fn period_previous_is_the_month_before() {
    let t = TestDir::with_fixture("mini");
    let named = t.run(&[
        "run", "--config", MINI, "--period", "2025-01", "--out", "named",
    ]);
    assert_eq!(named.code, 0, "{}", named.transcript());
    let previous = t.run(&[
        "run",
        "--config",
        MINI,
        "--period",
        "previous",
        "--as-of",
        "2025-02-01",
        "--out",
        "previous",
    ]);
    assert_eq!(previous.code, 0, "{}", previous.transcript());
    assert!(
        previous.stdout.starts_with("closed 2025-01 → previous\n"),
        "{}",
        previous.stdout
    );
    assert_eq!(
        t.read("named/invoices.json"),
        t.read("previous/invoices.json")
    );
    // Without --as-of: the month before this one, whatever today is.
    #[allow(clippy::disallowed_methods)]
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let (y, m) = civil_month(i64::try_from(today).unwrap());
    let (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    let out = t.run(&["validate", "--config", MINI, "--period", "previous"]);
    let expected = format!("{y:04}-{m:02}");
    assert!(
        out.stdout.contains(&expected) || out.stderr.contains(&expected),
        "{expected}: {}",
        out.transcript()
    );
}

/// The (year, month) of a day counted from 1970-01-01 (Howard Hinnant's
/// civil_from_days), independent of the code under test.
fn civil_month(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

/// `--json`: the report as one object on stdout, the same numbers as
/// invoices.json; an error as an object too (and in words on stderr).
#[test]
fn json_summaries_of_run_and_validate() {
    let t = TestDir::with_fixture("mini");
    let out = t.run(&[
        "run",
        "--config",
        MINI,
        "--period",
        "2025-01",
        "--json",
        "--fail-on",
        "exceptions",
    ]);
    let s: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.transcript()));
    assert_eq!(out.stdout.lines().count(), 1);
    let month: serde_json::Value =
        serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    assert_eq!(s["command"], "run");
    assert_eq!(s["status"], "closed");
    assert_eq!(s["published_to"], "out/2025-01/");
    assert_eq!(s["totals"]["billed"], month["billed_total"]);
    assert_eq!(s["totals"]["charged"], month["charged_total"]);
    assert_eq!(s["inputs"], month["inputs"]);
    assert_eq!(s["invoices"], month["invoices"].as_array().unwrap().len());
    let by_kind: u64 = s["exceptions_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(Some(by_kind), s["exceptions"].as_u64());
    let tripped = by_kind > 0;
    assert_eq!(
        out.code,
        if tripped { 4 } else { 0 },
        "{}",
        out.transcript()
    );
    assert_eq!(s["exit_code"], out.code);
    assert_eq!(
        s["gates_tripped"].as_array().unwrap().len(),
        usize::from(tripped)
    );

    let out = t.run(&[
        "validate", "--config", MINI, "--period", "2025-01", "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["command"], "validate");
    assert!(v.get("published_to").is_none());
    assert_eq!(v["totals"], s["totals"]);

    let out = t.run(&[
        "validate", "--config", MINI, "--period", "2025-02", "--json",
    ]);
    assert_eq!(out.code, 1);
    let e: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(e["exit_code"], 1);
    assert_eq!(e["exit_reason"], "bad input or policy (nothing published)");
    assert_eq!(
        e["error"]["message"],
        "fixtures/mini/billing/focus-2025-02.csv: no such file"
    );
    assert!(
        out.stderr
            .starts_with("error: fixtures/mini/billing/focus-2025-02.csv")
    );
}

/// A policy named by its folder is a slip of the command line (exit 2).
#[test]
fn a_config_that_is_a_folder_is_a_usage_error() {
    let t = TestDir::with_fixture("mini");
    let out = t.run(&["run", "--config", "fixtures/mini", "--period", "2025-01"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: `--config fixtures/mini` is a folder, not a policy file\n\
         hint: name the policy file itself, such as `--config fixtures/mini/chargeback.toml`\n"
    );
}

#[test]
fn request_log_with_a_renamed_column_names_the_columns() {
    let t = mini_with(|p| {
        p.replace(
            "requests = [\"fixtures/mini/requests/*.csv\"]",
            "requests = [\"fixtures/bad/requests-missing-column.csv\"]",
        )
    });
    let out = t.run(&["run", "--config", MINI, "--period", "2025-01"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.stderr, @r"
    error: fixtures/bad/requests-missing-column.csv: not a canonical request log: missing `model`; found `request_id`, `timestamp`, `provider`, `llm_model`, `team`, `input_tokens`, `output_tokens`
    hint: a request log needs `request_id`, `timestamp`, `provider`, `model`, `input_tokens`, `output_tokens`; see the request log schema in README.md
    ");
}

#[test]
fn file_that_is_not_its_extension_exits_1() {
    let t = mini_with(|p| {
        p.replace(
            "requests = [\"fixtures/mini/requests/*.csv\"]",
            "requests = [\"fixtures/bad/not-a-parquet.parquet\"]",
        )
    });
    let out = t.run(&["run", "--config", MINI, "--period", "2025-01"]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.starts_with(
            "error: fixtures/bad/not-a-parquet.parquet: cannot read the file as Parquet: "
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with("hint: the file's name says Parquet; check that it is one, or set `format` in the policy\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn catalog_with_float_prices_points_at_the_line() {
    let t = TestDir::with_fixture("mini");
    let cat = t
        .read("fixtures/mini/model-catalog.json")
        .replacen("\"5.00\"", "5.00", 1);
    t.write("fixtures/mini/model-catalog.json", &cat);
    let out = t.run(&["run", "--config", MINI, "--period", "2025-01"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: fixtures/mini/model-catalog.json:13:"),
        "{}",
        out.stderr
    );
}

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
        "error: `2025-13` is not a period, expected YYYY-MM such as `2025-01`\n"
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
    hint: see the policy reference in README.md (DESIGN §3.4 keys)
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
         hint: see the policy reference in README.md (DESIGN §3.4 keys)\n"
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
        "error: fixtures/mini/requests/*.jsonl: the pattern matches no file\nhint: check the path in [sources] and the `--period` it was expanded with\n"
    );
}

#[test]
fn missing_billing_file_for_the_period_exits_1() {
    let t = TestDir::with_fixture("mini");
    let out = t.run(&["run", "--config", MINI, "--period", "2025-02"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: fixtures/mini/billing/focus-2025-02.csv: no such file\nhint: check the path in [sources] and the `--period` it was expanded with\n"
    );
    assert!(!t.exists("out"));
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

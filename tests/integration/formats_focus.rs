//! FOCUS 1.x exports as the clouds write them (fixtures/aws-bedrock,
//! fixtures/azure-openai, fixtures/vertex-ai): model and token class read
//! from the provider's own meter text, token counts normalised from the
//! provider's units, non-usage rows kept apart. Each month is closed by the
//! real binary and checked against the bill summed by hand (each fixture's
//! README.md shows the sums).
//!
//! * AWS, 2025-03 (FOCUS 1.0 with AWS columns; usage types in
//!   `x_UsageType`, scope = application inference profile in `ResourceId`,
//!   usage in thousands of tokens): billed 29.453701 → 29.45; support
//!   9.00 + 3.703701 + 0.75 = 13.45, search 10.00 + 2.40 + 0.80 + 0.20 =
//!   13.40; unattributed 1.50 + 0.80 + 0.30 (Nova 2.0 Lite, not in the
//!   catalog) = 2.60. Credit −5.00, tax 2.40 and a correction of February
//!   −1.20 are other charges.
//! * Azure, 2025-09 (Microsoft FOCUS 1.0; meters in `x_SkuMeterName`, 1K and
//!   1M pricing blocks, scope = the resource's `app` tag, `Tags` without
//!   braces): billed 20.00; support 5.50 + 1.20 + 0.50 = 7.20, search 8.00 +
//!   3.50 = 11.50; unattributed 0.30 + 1.00 (untagged sandbox) = 1.30.
//!   A PTU purchase 100.00 and its refund −10.00 are other charges.
//! * Google, 2025-07 (Cloud Billing FOCUS export; SKU descriptions in
//!   `ChargeDescription`, scope = project in `SubAccountId`): billed 16.60;
//!   support 6.50 + 2.75 = 9.25, search 4.50 + 2.05 = 6.55; unattributed
//!   0.60 + 0.20 = 0.80. Credit −2.00, tax 1.10, adjustment −0.50.

use serde_json::Value;

use crate::util::{TestDir, usage_cost};

const BEDROCK_BILL: &str =
    "fixtures/aws-bedrock/billing/BILLING_PERIOD=2025-03/bedrock-focus-00001.csv";
const AZURE_BILL: &str = "fixtures/azure-openai/billing/20250901-20250930/part_0_0001.csv";
const VERTEX_BILL: &str = "fixtures/vertex-ai/billing/gcp_billing_export_focus_2025-07.csv";

fn run(t: &TestDir, fixture: &str, period: &str) -> Value {
    let config = format!("fixtures/{fixture}/chargeback.toml");
    let out = t.run(&["run", "--config", &config, "--period", period]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    serde_json::from_str(&t.read(&format!("out/{period}/invoices.json"))).unwrap()
}

fn close(fixture: &str, period: &str) -> (TestDir, Value) {
    let t = TestDir::with_fixture(fixture);
    let month = run(&t, fixture, period);
    (t, month)
}

/// Renames columns in the header line of a copied bill, as another export
/// version or a hand-edited file would name them.
fn rename_columns(t: &TestDir, bill: &str, renames: &[(&str, &str)]) {
    let text = t.read(bill);
    let (header, rest) = text.split_once('\n').unwrap();
    let mut names: Vec<String> = header.split(',').map(str::to_string).collect();
    for (from, to) in renames {
        let at = names
            .iter()
            .position(|n| n == from)
            .unwrap_or_else(|| panic!("no column `{from}` in {bill}"));
        names[at] = to.to_string();
    }
    t.write(bill, &format!("{}\n{rest}", names.join(",")));
}

fn assert_month(month: &Value, billed: &str, unattributed: &str, teams: &[(&str, &str)]) {
    assert_eq!(month["billed_total"], billed, "{month:#}");
    assert_eq!(month["unattributed"], unattributed);
    assert_eq!(month["estimated_total"], "0.00");
    assert_eq!(month["ties_to_bill"], true);
    assert_eq!(month["inputs"]["quarantined_billing_rows"], 0);
    assert_eq!(month["inputs"]["quarantined_requests"], 0);
    for (team, cost) in teams {
        assert_eq!(usage_cost(month, team), *cost, "{team}");
    }
}

/// The other billed charges as (category, amount, source row), in order.
fn other_charges(month: &Value) -> Vec<(String, String, String)> {
    month["other_billed_charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["category"].as_str().unwrap().to_string(),
                c["amount"].as_str().unwrap().to_string(),
                c["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn charge(category: &str, amount: &str, source: &str, row: u32) -> (String, String, String) {
    (
        category.to_string(),
        amount.to_string(),
        format!("{source}:{row}"),
    )
}

#[test]
fn aws_bedrock_cur_focus_export() {
    let (t, month) = close("aws-bedrock", "2025-03");
    assert_month(
        &month,
        "29.45",
        "2.60",
        &[("support", "13.45"), ("search", "13.40")],
    );
    assert_eq!(month["unattributed_by_provider"]["aws-bedrock"], "2.60");

    // Credit, tax and the correction of February are listed, not split.
    assert_eq!(
        other_charges(&month),
        vec![
            charge("credit", "-5.00", BEDROCK_BILL, 14),
            charge("tax", "2.40", BEDROCK_BILL, 15),
            charge("usage (correction)", "-1.20", BEDROCK_BILL, 16),
        ]
    );
    assert_eq!(month["other_billed_total"], "-3.80");
    let summary = t.read("out/2025-03/summary.html");
    for text in [
        "AWS Credits: Generative AI promotional credit",
        "Tax for product code AmazonBedrock",
        "Refund: Claude 3.5 Sonnet input tokens billed twice on 2025-02-18",
        "usage (correction)",
    ] {
        assert!(summary.contains(text), "summary lacks {text}");
    }

    // A model the catalog does not know is an exception with its row, and
    // its cost stays unattributed.
    let exceptions = t.read("out/2025-03/exceptions.csv");
    let unknown = exceptions
        .lines()
        .find(|l| l.starts_with("billed_model_unknown,"))
        .unwrap_or_else(|| panic!("{exceptions}"));
    assert!(
        unknown.contains(&format!("{BEDROCK_BILL}:13")) && unknown.contains("`Nova2.0Lite`"),
        "{unknown}"
    );

    // Usage types and quantities in thousands of tokens: all four token
    // classes of Claude 3.5 Sonnet on 03-03, the two hourly input rows
    // matched against the day's logs once (1.5M of 2M input tokens logged).
    let recon = t.read("out/2025-03/reconciliation.csv");
    assert!(
        recon.contains(
            "aws-bedrock,2025-03-03,claude-3-5-sonnet,10.5,7500000,7000000,0.9333,9.00,1.50,"
        ),
        "{recon}"
    );
    assert!(
        recon.contains(
            "aws-bedrock,2025-03-04,claude-3-5-sonnet,4.453701,1284567,1284567,1,4.45,0.00,"
        ),
        "{recon}"
    );
}

#[test]
fn aws_focus_1_2_names_the_usage_type_sku_meter() {
    // AWS's FOCUS 1.2 export moved `x_UsageType` into `SkuMeter`.
    let t = TestDir::with_fixture("aws-bedrock");
    rename_columns(&t, BEDROCK_BILL, &[("x_UsageType", "SkuMeter")]);
    let month = run(&t, "aws-bedrock", "2025-03");
    assert_month(
        &month,
        "29.45",
        "2.60",
        &[("support", "13.45"), ("search", "13.40")],
    );
}

#[test]
fn azure_openai_cost_management_focus_export() {
    let (t, month) = close("azure-openai", "2025-09");
    assert_month(
        &month,
        "20.00",
        "1.30",
        &[("support", "7.20"), ("search", "11.50")],
    );
    assert_eq!(
        other_charges(&month),
        vec![
            charge("purchase", "100.00", AZURE_BILL, 11),
            charge("purchase (correction)", "-10.00", AZURE_BILL, 12),
        ]
    );
    assert_eq!(month["other_billed_total"], "90.00");
    let summary = t.read("out/2025-09/summary.html");
    assert!(
        summary.contains("Refund: Azure OpenAI Provisioned Managed Global reservation"),
        "{summary}"
    );

    // Meter names resolved to models, 1K and 1M meters counted in tokens;
    // the untagged sandbox resource's 400K tokens match no logs.
    let recon = t.read("out/2025-09/reconciliation.csv");
    for row in [
        "azure-openai,2025-09-02,gpt-4o,5.5,2150000,2150000,1,5.50,0.00,",
        "azure-openai,2025-09-02,gpt-5,8,4300000,4300000,1,8.00,0.00,",
        "azure-openai,2025-09-03,gpt-4o,3,1050000,530000,0.5048,1.70,1.30,",
    ] {
        assert!(recon.contains(row), "{row}\n{recon}");
    }
}

#[test]
fn azure_pricing_blocks_of_1k_and_1m_tokens_give_the_same_month() {
    let expected = close_azure(&TestDir::with_fixture("azure-openai"));

    // Without consumed quantities (FOCUS 1.0-preview names them
    // UsageQuantity / UsageUnit): PricingQuantity × x_PricingBlockSize.
    let preview = [
        ("ConsumedQuantity", "UsageQuantity"),
        ("ConsumedUnit", "UsageUnit"),
    ];
    let t = TestDir::with_fixture("azure-openai");
    rename_columns(&t, AZURE_BILL, &preview);
    assert_eq!(close_azure(&t), expected);

    // Without the block size either: PricingQuantity × the unit of
    // measure, `1K` or `1M`.
    let t = TestDir::with_fixture("azure-openai");
    rename_columns(&t, AZURE_BILL, &preview);
    rename_columns(&t, AZURE_BILL, &[("x_PricingBlockSize", "x_BlockSize")]);
    assert_eq!(close_azure(&t), expected);
}

/// Closes the Azure month and returns its reconciliation and team costs.
fn close_azure(t: &TestDir) -> (String, String, String, String) {
    let month = run(t, "azure-openai", "2025-09");
    assert_month(
        &month,
        "20.00",
        "1.30",
        &[("support", "7.20"), ("search", "11.50")],
    );
    (
        t.read("out/2025-09/reconciliation.csv"),
        usage_cost(&month, "support"),
        usage_cost(&month, "search"),
        month["unattributed"].as_str().unwrap().to_string(),
    )
}

#[test]
fn vertex_ai_gemini_focus_export() {
    let (t, month) = close("vertex-ai", "2025-07");
    assert_month(
        &month,
        "16.60",
        "0.80",
        &[("support", "9.25"), ("search", "6.55")],
    );
    assert_eq!(
        other_charges(&month),
        vec![
            charge("credit", "-2.00", VERTEX_BILL, 11),
            charge("tax", "1.10", VERTEX_BILL, 12),
            charge("adjustment", "-0.50", VERTEX_BILL, 13),
        ]
    );
    assert_eq!(month["other_billed_total"], "-1.40");
    let summary = t.read("out/2025-07/summary.html");
    assert!(
        summary.contains("Promotion: Vertex AI Gemini trial credit"),
        "{summary}"
    );

    // SKU descriptions to models and classes: text and thinking output are
    // one output line, `Input Text Caching` is cached input.
    let recon = t.read("out/2025-07/reconciliation.csv");
    for row in [
        "vertex-ai,2025-07-08,gemini-2.5-flash,7.1,31400000,29400000,0.9363,6.50,0.60,",
        "vertex-ai,2025-07-09,gemini-2.5-pro,2.25,1100000,1080000,0.9818,2.05,0.20,",
    ] {
        assert!(recon.contains(row), "{row}\n{recon}");
    }
}

#[test]
fn a_focus_export_without_a_required_column_is_refused() {
    let t = TestDir::with_fixture("aws-bedrock");
    rename_columns(&t, BEDROCK_BILL, &[("ChargePeriodStart", "UsageStartDate")]);
    let out = t.run(&[
        "run",
        "-c",
        "fixtures/aws-bedrock/chargeback.toml",
        "-p",
        "2025-03",
    ]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let err = &out.stderr;
    assert!(err.contains(BEDROCK_BILL), "{err}");
    assert!(
        err.contains("not a FOCUS export: missing `ChargePeriodStart`; found `AvailabilityZone`, `BilledCost`,"),
        "{err}"
    );
    assert!(err.contains("`UsageStartDate`"), "{err}");
    assert!(
        err.contains(
            "hint: a FOCUS 1.x export has `BilledCost`, `BillingCurrency`, `ChargePeriodStart`, `ChargeCategory`, `ProviderName`"
        ),
        "{err}"
    );
    assert!(!t.exists("out/2025-03/manifest.json"));
}

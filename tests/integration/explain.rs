//! `chargeback explain` and `allocations.parquet`: the same parts, adding
//! up to every line and to the month; stable bytes; errors in words; a
//! month that straddles a price change priced day by day.

use std::collections::BTreeMap;
use std::fs::File;

use chargeback::money::Decimal;
use polars::prelude::*;
use serde_json::Value;

use crate::util::TestDir;

fn d(s: &str) -> Decimal {
    s.parse()
        .unwrap_or_else(|e| panic!("`{s}` is not a decimal: {e}"))
}

fn run_demo(t: &TestDir, out: &str) {
    let r = t.run(&[
        "run",
        "-c",
        "fixtures/demo/chargeback.toml",
        "-p",
        "2025-01",
        "-o",
        out,
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.transcript());
}

pub(crate) fn read_allocations(t: &TestDir, out: &str) -> DataFrame {
    let path = t.path().join(out).join("allocations.parquet");
    ParquetReader::new(File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// A text column as optional strings.
pub(crate) fn texts(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    let c = df.column(name).unwrap().cast(&DataType::String).unwrap();
    let c = c.str().unwrap();
    (0..c.len()).map(|i| c.get(i).map(str::to_string)).collect()
}

fn invoice_lines(df: &DataFrame) -> Vec<Option<u32>> {
    let c = df.column("invoice_line").unwrap().u32().unwrap();
    (0..c.len()).map(|i| c.get(i)).collect()
}

#[test]
fn explain_shows_the_parts_allocations_parquet_holds() {
    let t = TestDir::with_fixture("demo");
    run_demo(&t, "out");
    let out = t.run(&[
        "explain",
        "-c",
        "fixtures/demo/chargeback.toml",
        "-p",
        "2025-01",
        "--team",
        "copilot",
        "--line",
        "4",
        "--json",
        "-q",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    let line = &json["lines"][0];
    assert_eq!(line["line"], 4);
    assert_eq!(line["kind"], "usage");
    assert_eq!(line["model"], "gpt-4o");
    assert_eq!(line["use_case"], "code-complete");
    // The ledger's line 4 of copilot's invoice.
    let ledger = t.read("out/ledger.csv");
    let row: Vec<&str> = ledger
        .lines()
        .find(|l| l.starts_with("CB-2025-01-copilot,copilot,CC-4300,4,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(line["amount"].as_str().unwrap(), row[12]);

    let df = read_allocations(&t, "out");
    let (teams, lines) = (texts(&df, "team"), invoice_lines(&df));
    let columns = [
        "source",
        "day",
        "usage_type",
        "billed_cost",
        "weight",
        "total_weight",
        "exact_share",
        "amount",
    ];
    let cols: Vec<Vec<Option<String>>> = columns.iter().map(|c| texts(&df, c)).collect();
    let rows: Vec<Vec<Option<String>>> = (0..df.height())
        .filter(|&i| teams[i].as_deref() == Some("copilot") && lines[i] == Some(4))
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect();
    let parts = line["parts"].as_array().unwrap();
    assert!(parts.len() > 50, "{} parts", parts.len());
    assert_eq!(rows.len(), parts.len());
    for (row, part) in rows.iter().zip(parts) {
        for (k, c) in columns.iter().enumerate() {
            assert_eq!(row[k].as_deref(), part[*c].as_str(), "{c} of {part}");
        }
        assert_eq!(part["kind"], "billed");
        // The share is the covered cost times the team's weight of the
        // line's total weight, cut to 12 places (split_exact).
        let expect = d(part["covered_cost"].as_str().unwrap())
            * d(part["weight"].as_str().unwrap())
            / d(part["total_weight"].as_str().unwrap());
        let share = d(part["exact_share"].as_str().unwrap());
        assert!((expect - share).abs() < Decimal::new(1, 11), "{part}");
    }
    let exact: Decimal = parts
        .iter()
        .map(|p| d(p["exact_share"].as_str().unwrap()))
        .sum();
    let amounts: Decimal = parts.iter().map(|p| d(p["amount"].as_str().unwrap())).sum();
    assert_eq!(exact, d(line["exact"].as_str().unwrap()));
    assert_eq!(amounts, d(line["amount"].as_str().unwrap()));
    assert_eq!(
        d(line["adjustment"].as_str().unwrap()),
        d(line["amount"].as_str().unwrap()) - exact
    );

    // The text names the same first line, the sums and the cut.
    let text = t.run(&[
        "explain",
        "-c",
        "fixtures/demo/chargeback.toml",
        "-p",
        "2025-01",
        "-t",
        "copilot",
        "-l",
        "4",
        "-q",
    ]);
    assert_eq!(text.code, 0, "{}", text.transcript());
    let first = parts[0]["source"].as_str().unwrap();
    assert!(text.stdout.contains(first), "{}", text.stdout);
    assert!(text.stdout.contains("more (exact"), "{}", text.stdout);
    let sums: Vec<(&str, &str)> = text
        .stdout
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .filter(|(k, _)| ["exact", "amount", "adjustment"].contains(k))
        .map(|(k, v)| (k, v.split_whitespace().next().unwrap()))
        .collect();
    let adjustment = d(line["adjustment"].as_str().unwrap());
    assert_eq!(
        sums,
        [
            ("exact", exact.to_string().as_str()),
            ("amount", line["amount"].as_str().unwrap()),
            ("adjustment", format!("{adjustment:+}").as_str()),
        ]
    );
}

#[test]
fn allocations_add_up_to_every_line_and_to_the_month() {
    let t = TestDir::with_fixture("demo");
    run_demo(&t, "a");
    run_demo(&t, "b");
    assert!(
        t.read_bytes("a/allocations.parquet") == t.read_bytes("b/allocations.parquet"),
        "allocations.parquet differs between two runs"
    );
    let month: Value = serde_json::from_str(&t.read("a/invoices.json")).unwrap();
    let df = read_allocations(&t, "a");
    let (teams, lines, amounts, kinds) = (
        texts(&df, "team"),
        invoice_lines(&df),
        texts(&df, "amount"),
        texts(&df, "kind"),
    );
    let mut by_line: BTreeMap<(String, u32), Decimal> = BTreeMap::new();
    let mut bucket = Decimal::ZERO;
    for i in 0..df.height() {
        let a = d(amounts[i].as_deref().unwrap());
        match (&teams[i], lines[i]) {
            (Some(team), Some(n)) => *by_line.entry((team.clone(), n)).or_default() += a,
            (None, None) => {
                assert_eq!(kinds[i].as_deref(), Some("unattributed"));
                bucket += a;
            }
            other => panic!("a row with team and line {other:?}"),
        }
    }
    let total: Decimal = by_line.values().copied().sum::<Decimal>() + bucket;
    let money = |k: &str| d(month[k].as_str().unwrap());
    assert_eq!(total, money("billed_total") + money("estimated_total"));
    assert_eq!(bucket, money("unattributed"));
    // Every usage line of every invoice, and nothing else.
    let mut usage_lines = 0;
    for inv in month["invoices"].as_array().unwrap() {
        for (k, l) in inv["lines"].as_array().unwrap().iter().enumerate() {
            if l["kind"] != "usage" {
                continue;
            }
            usage_lines += 1;
            let key = (inv["team"].as_str().unwrap().to_string(), k as u32 + 1);
            let sum = by_line.get(&key).copied().unwrap_or_default();
            assert_eq!(sum, d(l["amount"].as_str().unwrap()), "{key:?}");
        }
    }
    assert_eq!(by_line.len(), usage_lines);
    let kinds: std::collections::BTreeSet<_> = kinds.into_iter().flatten().collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["billed", "catalog", "unattributed"]
    );
}

#[test]
fn explain_names_what_does_not_exist() {
    let t = TestDir::with_fixture("demo");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "explain",
            "-c",
            "fixtures/demo/chargeback.toml",
            "-p",
            "2025-01",
            "-q",
        ];
        a.extend_from_slice(extra);
        a
    };
    let out = t.run(&args(&["--team", "sales"]));
    assert_eq!(
        out.transcript(),
        "exit: 2\n--- stdout\n--- stderr\n\
         error: no invoice for team `sales` in 2025-01\n\
         hint: teams with an invoice in 2025-01: `copilot`, `data-science`, `finance-ops`, `hr-bot`, `legal`, `marketing`, `search`, `support`, `untagged`\n"
    );
    let out = t.run(&args(&["--team", "search", "--line", "12"]));
    assert_eq!(
        out.transcript(),
        "exit: 2\n--- stdout\n--- stderr\n\
         error: the invoice of `search` has no line 12\n\
         hint: its lines are 1 to 11: 1 to 9 usage, 10 markup, 11 platform_fee\n"
    );
    assert!(!t.exists("out"), "explain writes nothing");
}

#[test]
fn explain_shows_tier_basis_and_rate() {
    let t = TestDir::with_fixture("demo");
    let out = t.run(&[
        "explain",
        "-c",
        "fixtures/demo/chargeback.toml",
        "-p",
        "2025-01",
        "-t",
        "search",
        "-l",
        "10",
        "-q",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    insta::assert_snapshot!("explain_search_markup", out.stdout);
}

/// A catalog whose prices change on the 15th, and a month on both sides:
/// mistral sent no bill, so its usage is priced day by day at the prices
/// in force; openai's bill is checked against the price of each line's day.
#[test]
fn a_month_that_straddles_a_price_change_is_priced_by_the_day() {
    let t = TestDir::new();
    t.write(
        "catalog.json",
        r#"{"models":[
          {"provider":"mistral","model":"mistral-large","prices":[
            {"effective_from":"2025-01-01","input":"2","output":"6"},
            {"effective_from":"2025-01-15","input":"1","output":"3"}]},
          {"provider":"openai","model":"gpt-4o","prices":[
            {"effective_from":"2024-06-01","input":"10","output":"30"},
            {"effective_from":"2025-01-15","input":"5","output":"15"}]}
        ]}"#,
    );
    t.write(
        "logs/january.csv",
        "request_id,timestamp,provider,model,billing_scope,team,use_case,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,status\n\
         r1,2025-01-14T10:00:00Z,mistral,mistral-large,,a,chat,1234567,0,0,100001,ok\n\
         r2,2025-01-15T00:00:00Z,mistral,mistral-large,,a,chat,2000003,0,0,0,ok\n\
         r3,2025-01-20T23:59:59Z,mistral,mistral-large,,a,chat,500000,0,0,333333,ok\n\
         r4,2025-01-14T12:00:00Z,openai,gpt-4o,s1,a,chat,100000,0,0,0,ok\n\
         r5,2025-01-16T12:00:00Z,openai,gpt-4o,s1,a,chat,100000,0,0,0,ok\n",
    );
    t.write(
        "bill/focus.csv",
        "BilledCost,BillingCurrency,ChargePeriodStart,ChargeCategory,ProviderName,SubAccountId,ConsumedQuantity,ConsumedUnit,x_Model,x_UsageType\n\
         1.00,USD,2025-01-14T00:00:00Z,Usage,OpenAI,s1,100000,Tokens,gpt-4o,input\n\
         0.50,USD,2025-01-16T00:00:00Z,Usage,OpenAI,s1,100000,Tokens,gpt-4o,input\n",
    );
    t.write(
        "policy.toml",
        "[organization]\nname = \"P\"\n\
         [sources]\nrequests = [\"logs/*.csv\"]\n\
         billing = [{ url = \"bill/focus.csv\", format = \"focus\" }]\ncatalog = \"catalog.json\"\n",
    );
    let out = t.run(&[
        "run",
        "-c",
        "policy.toml",
        "-p",
        "2025-01",
        "-o",
        "out",
        "-q",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());

    // 14th at 2/6: 2.469134 + 0.600006; 15th at 1/3: 2.000003; 20th at
    // 1/3: 0.5 + 0.999999. Σ 6.569142.
    let month: Value = serde_json::from_str(&t.read("out/invoices.json")).unwrap();
    let lines = month["invoices"][0]["lines"].as_array().unwrap();
    let mistral = lines.iter().find(|l| l["provider"] == "mistral").unwrap();
    assert_eq!(
        mistral["description"],
        "mistral-large · chat (estimated, catalog prices of 2025-01-01 and 2025-01-15)"
    );
    assert_eq!(mistral["amount"], "6.57");
    assert_eq!(month["estimated_total"], "6.57");
    let openai = lines.iter().find(|l| l["provider"] == "openai").unwrap();
    assert_eq!(openai["description"], "gpt-4o · chat");
    assert_eq!(openai["amount"], "1.50");

    let recon = t.read("out/reconciliation.csv");
    let rows: Vec<Vec<&str>> = recon
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // provider, day, model, …, estimated (9), catalog_cost (10), price_variance (11)
    let by_day: Vec<(&str, &str, &str, &str, &str)> = rows
        .iter()
        .map(|r| (r[0], r[1], r[9], r[10], r[11]))
        .collect();
    assert_eq!(
        by_day,
        [
            ("mistral", "2025-01-14", "3.07", "", ""),
            ("mistral", "2025-01-15", "2.00", "", ""),
            ("mistral", "2025-01-20", "1.50", "", ""),
            ("openai", "2025-01-14", "0.00", "1", "0"),
            ("openai", "2025-01-16", "0.00", "0.5", "0"),
        ]
    );
    assert!(
        !t.read("out/exceptions.csv").contains("price_variance"),
        "the bill is at the price of each day"
    );

    // The catalog parts, per day and class, exact, with the price set.
    let df = read_allocations(&t, "out");
    let cols: Vec<Vec<Option<String>>> = [
        "kind",
        "day",
        "usage_type",
        "quantity",
        "price_per_mtok",
        "prices_from",
        "exact_share",
    ]
    .iter()
    .map(|c| texts(&df, c))
    .collect();
    let catalog: Vec<Vec<String>> = (0..df.height())
        .filter(|&i| cols[0][i].as_deref() == Some("catalog"))
        .map(|i| cols[1..].iter().map(|c| c[i].clone().unwrap()).collect())
        .collect();
    assert_eq!(
        catalog,
        [
            [
                "2025-01-14",
                "input",
                "1234567",
                "2",
                "2025-01-01",
                "2.469134"
            ],
            [
                "2025-01-14",
                "output",
                "100001",
                "6",
                "2025-01-01",
                "0.600006"
            ],
            [
                "2025-01-15",
                "input",
                "2000003",
                "1",
                "2025-01-15",
                "2.000003"
            ],
            ["2025-01-20", "input", "500000", "1", "2025-01-15", "0.5"],
            [
                "2025-01-20",
                "output",
                "333333",
                "3",
                "2025-01-15",
                "0.999999"
            ],
        ]
    );

    let text = t.run(&[
        "explain",
        "-c",
        "policy.toml",
        "-p",
        "2025-01",
        "-t",
        "a",
        "-q",
    ]);
    assert_eq!(text.code, 0, "{}", text.transcript());
    insta::assert_snapshot!("explain_straddling_prices", text.stdout);
}

#[test]
fn an_empty_month_writes_an_empty_allocations_table() {
    let t = TestDir::with_fixture("mini");
    t.write(
        "logs/none.csv",
        "request_id,timestamp,provider,model,input_tokens,output_tokens\n",
    );
    t.write(
        "policy.toml",
        "[organization]\nname = \"P\"\n\
         [sources]\nrequests = [\"logs/*.csv\"]\ncatalog = \"fixtures/mini/model-catalog.json\"\n",
    );
    let out = t.run(&[
        "run",
        "-c",
        "policy.toml",
        "-p",
        "2025-01",
        "-o",
        "out",
        "-q",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let df = read_allocations(&t, "out");
    assert_eq!(df.height(), 0);
    assert_eq!(
        df.get_column_names()
            .into_iter()
            .map(PlSmallStr::as_str)
            .collect::<Vec<_>>(),
        chargeback::schema::ledger::ALLOCATIONS
    );
}

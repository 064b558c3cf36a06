//! `journal.csv`: the mini month with `[gl]`, read back as an ERP would —
//! every entry balances, each team's rows net to its invoice, the
//! platform's to the lines of each account — and the policy errors of
//! `[gl]` the month itself reveals.

use std::collections::BTreeMap;

use chargeback::money::Decimal;
use serde_json::Value;

use crate::util::TestDir;

const GL: &str = r#"
[gl]
expense_account = "6105"
platform_account = "4900"
markup_account = "4910"
cost_center = "CC-9000"
"#;

/// The mini fixture's policy, `gl.toml`, with `[gl]` and `extra` added, and
/// support debited on its own account.
fn mini_with_gl(extra: &str) -> TestDir {
    let t = TestDir::with_fixture("mini");
    let policy = t.read("fixtures/mini/chargeback.toml").replace(
        "cost_center = \"CC-4100\"\n",
        "cost_center = \"CC-4100\"\ngl_account = \"6105-20\"\n",
    );
    t.write("gl.toml", &format!("{policy}{GL}{extra}"));
    t
}

const UNTAGGED: &str =
    "\n[teams.untagged]\nname = \"Untagged requests\"\ncost_center = \"CC-4900\"\n";

const RUN: [&str; 6] = ["run", "--config", "gl.toml", "--period", "2025-01", "-q"];

fn amount(s: &str) -> Decimal {
    if s.is_empty() {
        Decimal::ZERO
    } else {
        s.parse().unwrap()
    }
}

#[test]
fn every_entry_balances_and_ties_to_its_invoice() {
    let t = mini_with_gl(UNTAGGED);
    let out = t.run(&RUN);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let text = t.read("out/2025-01/journal.csv");
    insta::assert_snapshot!("mini_journal.csv", text);

    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, chargeback::schema::ledger::JOURNAL);
    // Per entry: debits, credits, and the team's net debit.
    let mut entries: BTreeMap<String, [Decimal; 3]> = BTreeMap::new();
    let mut platform: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for r in reader.records() {
        let r = r.unwrap();
        let (debit, credit) = (amount(&r[5]), amount(&r[6]));
        assert!(
            (debit.is_zero() != credit.is_zero())
                && debit >= Decimal::ZERO
                && credit >= Decimal::ZERO,
            "{r:?}"
        );
        assert_eq!(
            (&r[0], &r[1], &r[2], &r[7]),
            (&r[8], "2025-02-01", "2025-01", "USD")
        );
        let e = entries.entry(r[0].to_string()).or_default();
        e[0] += debit;
        e[1] += credit;
        if r[3].starts_with("6105") {
            e[2] += debit - credit;
        } else {
            assert_eq!(&r[4], "CC-9000", "{r:?}");
            *platform
                .entry((r[0].to_string(), r[3].to_string()))
                .or_default() += credit - debit;
        }
    }
    let invoices = month["invoices"].as_array().unwrap();
    let mut journaled = Decimal::ZERO;
    for inv in invoices {
        let number = inv["invoice_number"].as_str().unwrap();
        let total = amount(inv["total"].as_str().unwrap());
        let Some([debits, credits, team]) = entries.get(number) else {
            // Only an invoice of zeros has no entry.
            assert_eq!(total, Decimal::ZERO, "{number}");
            assert!(
                inv["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|l| amount(l["amount"].as_str().unwrap()).is_zero())
            );
            continue;
        };
        assert_eq!(debits, credits, "{number}");
        assert_eq!(*team, total, "{number}");
        let usage = amount(inv["usage_cost"].as_str().unwrap());
        let on = |account: &str| {
            platform
                .get(&(number.to_string(), account.to_string()))
                .copied()
                .unwrap_or_default()
        };
        assert_eq!(on("4900"), usage, "{number}");
        assert_eq!(on("4910"), total - usage, "{number}");
        journaled += team;
    }
    assert_eq!(entries.len(), 3, "untagged's invoice of 0.00 has no entry");
    assert_eq!(journaled, amount(month["charged_total"].as_str().unwrap()));

    // Hashed into the manifest, and rerun byte for byte by verify.
    let manifest: Value = serde_json::from_str(&t.read("out/2025-01/manifest.json")).unwrap();
    assert!(
        manifest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["path"] == "journal.csv"),
        "{manifest}"
    );
    let out = t.run(&["verify", "--manifest", "out/2025-01/manifest.json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(out.stdout, "identical: 21 outputs of 2025-01\n");
}

#[test]
fn a_team_only_the_logs_name_stops_run_and_validate() {
    // The mini logs carry requests without a team: `untagged`, invoiced
    // under the defaults, with no cost centre to debit.
    let t = mini_with_gl("");
    let expected = "error: gl.toml:47:1: team `untagged` is invoiced but not in [teams], so [gl] has no cost centre to debit its invoice to\n\
                    hint: add `[teams.untagged]` with `cost_center = \"…\"`\n";
    let out = t.run(&RUN);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", expected)
    );
    assert!(!t.exists("out"), "nothing is published");
    let out = t.run(&[
        "validate", "--config", "gl.toml", "--period", "2025-01", "-q",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", expected)
    );
}

#[test]
fn a_policy_team_without_a_cost_centre_is_refused_when_read() {
    let t = mini_with_gl("\n[teams.research]\nname = \"Research\"\n");
    let out = t.run(&RUN);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        "error: gl.toml:53:1: team `research` has no `cost_center`, and [gl] debits every invoice to its team's cost centre\n\
         hint: add `cost_center = \"…\"` to [teams.research]\n"
    );
    assert!(!t.exists("out"));
}

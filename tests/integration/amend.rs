//! `chargeback amend` on the demo: a closed January, late rows, credit and
//! debit notes beside the month, a second amendment relative to the first,
//! and February carrying every note exactly once.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{Output, TestDir};

const POLICY: &str = "fixtures/demo/chargeback.toml";

fn ok(out: Output) -> Output {
    assert_eq!(out.code, 0, "{}", out.transcript());
    out
}

fn json(t: &TestDir, rel: &str) -> Value {
    serde_json::from_str(&t.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn d(v: &Value) -> rust_decimal::Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a string"))
        .parse()
        .unwrap()
}

/// Per team: the invoice of an `invoices.json`.
fn invoices(v: &Value) -> BTreeMap<String, Value> {
    v["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["team"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

/// Every published file of the month but its manifest and amendments, with
/// its bytes.
fn originals(t: &TestDir) -> BTreeMap<String, Vec<u8>> {
    t.files("out/2025-01")
        .into_iter()
        .filter(|f| f != "manifest.json" && !f.starts_with("amendments/"))
        .map(|f| {
            let bytes = t.read_bytes(&format!("out/2025-01/{f}"));
            (f, bytes)
        })
        .collect()
}

fn amend(t: &TestDir, as_of: &str) -> Output {
    t.run(&[
        "amend",
        "--config",
        POLICY,
        "--period",
        "2025-01",
        "--as-of",
        as_of,
        "--reason",
        "late log shipments",
    ])
}

#[test]
fn late_rows_amend_a_closed_month_and_the_next_month_carries_each_note_once() {
    let t = TestDir::with_fixture("demo");
    ok(t.run(&["run", "-c", POLICY, "-p", "2025-01", "-q"]));
    let published = originals(&t);

    // Nothing new: nothing written.
    let out = ok(amend(&t, "2025-02-10"));
    assert_eq!(
        out.stdout,
        "nothing to amend: 2025-01 as issued on 2025-02-01 is what its inputs give now; nothing was written\n"
    );
    assert!(!t.exists("out/2025-01/amendments"));

    // The late rows arrive.
    std::fs::copy(
        t.path().join("fixtures/demo/late/late-2025-01.parquet"),
        t.path()
            .join("fixtures/demo/requests/2025-01/late-2025-01.parquet"),
    )
    .unwrap();
    let out = ok(amend(&t, "2025-02-10"));
    assert!(
        out.stdout.starts_with(
            "amended 2025-01 → out/2025-01/amendments/1/ (amendment 1, issued 2025-02-10)\n"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        originals(&t),
        published,
        "the published documents are untouched"
    );

    let notes = json(&t, "out/2025-01/amendments/1/notes.json");
    let before = invoices(&json(&t, "out/2025-01/invoices.json"));
    let after = invoices(&json(&t, "out/2025-01/amendments/1/invoices.json"));
    let by_team: BTreeMap<String, Value> = notes["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["team"].as_str().unwrap().to_string(), n.clone()))
        .collect();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (team, old) in &before {
        let new = &after[team];
        let difference = d(&new["total"]) - d(&old["total"]);
        match by_team.get(team) {
            None => assert!(
                difference.is_zero(),
                "{team} changed by {difference} without a note"
            ),
            Some(n) => {
                assert_eq!(d(&n["amount"]), difference, "{team}");
                assert_eq!(n["previous_total"], old["total"], "{team}");
                assert_eq!(n["new_total"], new["total"], "{team}");
                assert_eq!(
                    n["note_number"],
                    format!("{}-A1", old["invoice_number"].as_str().unwrap())
                );
                assert_eq!(n["original_invoice"], old["invoice_number"]);
                let kind = if difference.is_sign_negative() {
                    "credit"
                } else {
                    "debit"
                };
                assert_eq!(n["kind"], kind, "{team}");
                let lines: rust_decimal::Decimal = n["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| d(&l["difference"]))
                    .sum();
                assert_eq!(lines, difference, "{team}: the lines add up to the note");
                let stem = new["file"].as_str().unwrap();
                for ext in ["html", "pdf"] {
                    assert!(t.exists(&format!("out/2025-01/amendments/1/notes/{stem}.{ext}")));
                }
                let pdf = t.read_bytes(&format!("out/2025-01/amendments/1/notes/{stem}.pdf"));
                assert!(
                    pdf.windows(9).any(|w| w == b"note.json"),
                    "{team}: data attached"
                );
            }
        }
    }
    // Marketing's late usage lifts it from the experimental tier into
    // standard: it pays less markup on all its usage, so its note is a
    // credit although its usage grew.
    let (old, new) = (&before["marketing"], &after["marketing"]);
    assert_eq!(
        (old["tier"].as_str(), new["tier"].as_str()),
        (Some("experimental"), Some("standard"))
    );
    assert!(d(&new["usage_cost"]) > d(&old["usage_cost"]));
    let m = &by_team["marketing"];
    assert_eq!(
        (m["kind"].as_str(), m["amount"].as_str()),
        (Some("credit"), Some("-1.25"))
    );
    let tier_lines: Vec<(&str, &str, &str)> = m["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "markup")
        .map(|l| {
            (
                l["description"].as_str().unwrap(),
                l["previous_amount"].as_str().unwrap(),
                l["new_amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tier_lines,
        vec![
            ("Tier standard markup 20% on usage cost", "0.00", "8.12"),
            (
                "Tier experimental markup 50% on usage cost",
                "16.88",
                "0.00"
            ),
        ]
    );

    // The month's manifest lists the amendment; both verify.
    let manifest = json(&t, "out/2025-01/manifest.json");
    assert_eq!(manifest["amended"], true);
    let numbers: Vec<&Value> = notes["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["note_number"])
        .collect();
    assert_eq!(
        manifest["amendments"][0]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        numbers
    );
    assert_eq!(
        manifest["amendments"][0]["sha256"].as_str().unwrap(),
        chargeback::seal::sha256_hex(&t.read_bytes("out/2025-01/amendments/1/manifest.json"))
    );
    let out = ok(t.run(&["verify", "-m", "out/2025-01/manifest.json"]));
    assert_eq!(out.stdout, "identical: 28 outputs of 2025-01\n");
    let out = ok(t.run(&["verify", "-m", "out/2025-01/amendments/1/manifest.json"]));
    assert_eq!(
        out.stdout,
        "identical: 15 outputs of 2025-01, amendment 1\n"
    );

    // A second amend with nothing new writes nothing.
    let files = t.files("out/2025-01");
    let out = ok(amend(&t, "2025-02-11"));
    assert_eq!(
        out.stdout,
        "nothing to amend: 2025-01 as amended by amendment 1 (2025-02-10) is what its inputs give now; nothing was written\n"
    );
    assert_eq!(t.files("out/2025-01"), files);

    // A policy fix: amendment 2 is relative to the amended state.
    let policy = t.read(POLICY).replace(
        "model = \"tiered\"\nplatform_fee_rate = \"0.10\"",
        "model = \"tiered\"\nplatform_fee_rate = \"0.12\"",
    );
    assert!(policy.contains("\"0.12\""));
    t.write(POLICY, &policy);
    let out = ok(amend(&t, "2025-02-12"));
    assert!(
        out.stdout.contains("CB-2025-01-marketing-A2"),
        "{}",
        out.stdout
    );
    let second = json(&t, "out/2025-01/amendments/2/notes.json");
    assert_eq!(second["notes"].as_array().unwrap().len(), 1);
    let n = &second["notes"][0];
    assert_eq!(
        n["previous_total"], "52.76",
        "relative to amendment 1, not the invoice"
    );
    assert_eq!(n["original_invoice"], "CB-2025-01-marketing");
    let a2 = invoices(&json(&t, "out/2025-01/amendments/2/invoices.json"));
    assert_eq!(
        d(&n["amount"]),
        d(&a2["marketing"]["total"]) - rust_decimal::Decimal::new(5276, 2)
    );

    // February carries every note once, as an adjustment line in the total.
    ok(t.run(&["run", "-c", POLICY, "-p", "2025-02", "-q"]));
    let feb = invoices(&json(&t, "out/2025-02/invoices.json"));
    let mut due: BTreeMap<String, rust_decimal::Decimal> = BTreeMap::new();
    for file in [
        "out/2025-01/amendments/1/notes.json",
        "out/2025-01/amendments/2/notes.json",
    ] {
        for n in json(&t, file)["notes"].as_array().unwrap() {
            *due.entry(n["team"].as_str().unwrap().into()).or_default() += d(&n["amount"]);
            let team = &feb[n["team"].as_str().unwrap()];
            let lines: Vec<&Value> = team["lines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| {
                    l["kind"] == "adjustment"
                        && l["description"]
                            .as_str()
                            .unwrap()
                            .contains(n["note_number"].as_str().unwrap())
                })
                .collect();
            assert_eq!(
                lines.len(),
                1,
                "{} once on February's invoice",
                n["note_number"]
            );
            assert_eq!(lines[0]["amount"], n["amount"]);
        }
    }
    for (team, inv) in &feb {
        let expected = due.get(team).copied().unwrap_or_default();
        assert_eq!(d(&inv["adjustments"]), expected, "{team}");
        let lines: rust_decimal::Decimal = inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| d(&l["amount"]))
            .sum();
        assert_eq!(d(&inv["total"]), lines, "{team}: the total is its lines");
    }
    let feb_manifest = json(&t, "out/2025-02/manifest.json");
    assert_eq!(feb_manifest["carried_notes"].as_array().unwrap().len(), 7);
    // The same run again: the same bytes, no `--force` needed.
    ok(t.run(&["run", "-c", POLICY, "-p", "2025-02", "-q"]));
    ok(t.run(&["verify", "-m", "out/2025-02/manifest.json"]));

    // March: February carried them, so March carries none.
    let bill = t
        .read("fixtures/demo/billing/focus-2025-02.csv")
        .replace("2025-03-", "2025-04-")
        .replace("2025-02-", "2025-03-");
    t.write("fixtures/demo/billing/focus-2025-03.csv", &bill);
    let policy = t.read(POLICY).replace(
        "requests = [\"fixtures/demo/requests/{period}/*.parquet\"]",
        "requests = [\"fixtures/demo/requests/2025-02/*.parquet\"]",
    );
    t.write(POLICY, &policy);
    ok(t.run(&["run", "-c", POLICY, "-p", "2025-03", "-q"]));
    let march = json(&t, "out/2025-03/invoices.json");
    for inv in march["invoices"].as_array().unwrap() {
        assert_eq!(inv["adjustments"], "0.00", "{}", inv["team"]);
    }
    assert_eq!(
        json(&t, "out/2025-03/manifest.json")["carried_notes"],
        Value::Array(Vec::new())
    );
}

#[test]
fn amend_says_what_it_needs() {
    let t = TestDir::with_fixture("demo");
    let out = t.run(&["amend", "-c", POLICY, "-p", "2025-01"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: `amend` needs `--as-of DATE`: the issue date of its notes\n\
         hint: chargeback never reads the clock; give the day the notes are issued, as YYYY-MM-DD\n"
    );
    let out = amend(&t, "2025-02-10");
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: out/2025-01/manifest.json: no such file: 2025-01 is not published at `out/2025-01/`\n\
         hint: close the month with `chargeback run` first (or give its folder with `--out`)\n"
    );
    ok(t.run(&["run", "-c", POLICY, "-p", "2025-01", "-q"]));
    let out = amend(&t, "2025-01-31");
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: `--as-of 2025-01-31` is before 2025-01 was last issued, on 2025-02-01\n\
         hint: notes are dated on or after the documents they correct\n"
    );
    // A preliminary run is rerun, not amended.
    ok(t.run(&[
        "run",
        "-c",
        POLICY,
        "-p",
        "2025-01",
        "-q",
        "--as-of",
        "2025-01-20",
        "--out",
        "prelim",
    ]));
    let out = t.run(&[
        "amend",
        "-c",
        POLICY,
        "-p",
        "2025-01",
        "--as-of",
        "2025-02-10",
        "--out",
        "prelim",
    ]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: 2025-01 at `prelim` was issued on 2025-01-20, before the month ended: it is preliminary, not closed\n\
         hint: rerun `chargeback run` for the month; only a closed month is amended\n"
    );
}

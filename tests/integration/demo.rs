//! Golden snapshots of the bundled demo month, the README's first command.
//! The manifest pins the sha256 of every output, HTML included.

use serde_json::Value;

use crate::util::TestDir;

#[test]
fn demo_month_golden() {
    let t = TestDir::with_fixture("demo");
    let out = t.run(&[
        "run",
        "--config",
        "fixtures/demo/chargeback.toml",
        "--period",
        "2025-01",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    insta::assert_snapshot!("demo_stdout", out.transcript());
    for f in [
        "invoices.json",
        "ledger.csv",
        "exceptions.csv",
        "budgets.json",
        "manifest.json",
    ] {
        insta::assert_snapshot!(format!("demo_{f}"), t.read(&format!("out/2025-01/{f}")));
    }
    let month: Value = serde_json::from_str(&t.read("out/2025-01/invoices.json")).unwrap();
    assert_eq!(month["ties_to_bill"], true);
}

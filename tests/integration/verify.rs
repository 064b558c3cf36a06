//! `chargeback verify`: a published month rerun from its manifest, byte for
//! byte, naming what changed when it does not verify.

use crate::util::TestDir;

fn published(as_of: Option<&str>) -> TestDir {
    let t = TestDir::with_fixture("mini");
    let mut args = vec![
        "run",
        "--config",
        "fixtures/mini/chargeback.toml",
        "--period",
        "2025-01",
        "-q",
    ];
    if let Some(d) = as_of {
        args.extend(["--as-of", d]);
    }
    let out = t.run(&args);
    assert_eq!(out.code, 0, "{}", out.transcript());
    t
}

const MANIFEST: [&str; 3] = ["verify", "--manifest", "out/2025-01/manifest.json"];

#[test]
fn a_published_month_verifies_identical_and_writes_nothing() {
    for as_of in [None, Some("2025-01-20")] {
        let t = published(as_of);
        let before = t.files("out");
        let out = t.run(&MANIFEST);
        assert_eq!(out.code, 0, "{}", out.transcript());
        assert_eq!(out.stdout, "identical: 20 outputs of 2025-01\n");
        assert_eq!(out.stderr, "");
        assert_eq!(t.files("out"), before);
    }
}

#[test]
fn a_changed_or_gone_input_is_named_with_both_hashes() {
    let t = published(None);
    let a = "fixtures/mini/requests/gateway-a.csv";
    let old = t.read(a);
    t.write(
        a,
        &format!("{old}r99,2025-01-05T10:00:00Z,openai,gpt-4o,proj_a,support,tickets,1,0,0,1,ok\n"),
    );
    std::fs::remove_file(t.path().join("fixtures/mini/requests/gateway-b.csv")).unwrap();
    let out = t.run(&MANIFEST);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "differs: 2 inputs of 2025-01 changed since it was published"
    );
    assert!(
        lines[1].starts_with(&format!("  {a}: sha256 ")),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].contains(&format!(" ({} bytes) → ", old.len())),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("  fixtures/mini/requests/gateway-b.csv: gone (was sha256 "),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stderr,
        "error: out/2025-01/manifest.json: 2025-01 cannot be verified: 2 inputs changed\n\
         hint: restore the inputs listed above to verify the month as it was published\n"
    );
}

/// The same inputs, other outputs (here: the published invoices.json and its
/// hash edited after the fact): the output is named, and for invoices.json
/// the first team and field.
#[test]
fn an_output_that_would_differ_is_named_down_to_the_field() {
    let t = published(None);
    let path = "out/2025-01/invoices.json";
    let mut inv: serde_json::Value = serde_json::from_str(&t.read(path)).unwrap();
    let team = inv["invoices"][0]["team"].as_str().unwrap().to_string();
    let total = inv["invoices"][0]["total"].as_str().unwrap().to_string();
    inv["invoices"][0]["total"] = "999.99".into();
    let bytes = serde_json::to_string_pretty(&inv).unwrap() + "\n";
    t.write(path, &bytes);
    let mut m: serde_json::Value =
        serde_json::from_str(&t.read("out/2025-01/manifest.json")).unwrap();
    let sha = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes.as_bytes()))
    };
    for o in m["outputs"].as_array_mut().unwrap() {
        if o["path"] == "invoices.json" {
            o["sha256"] = sha.clone().into();
        }
    }
    t.write(
        "out/2025-01/manifest.json",
        &(serde_json::to_string_pretty(&m).unwrap() + "\n"),
    );
    let out = t.run(&MANIFEST);
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stdout.starts_with(
            "differs: the same inputs give other outputs for 2025-01\n  invoices.json: sha256 "
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with(&format!(
            "  invoices.json: team `{team}`: `total` was \"999.99\", now \"{total}\"\n"
        )),
        "{}",
        out.stdout
    );
}

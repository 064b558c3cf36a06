//! `chargeback catalog import-litellm`: a real excerpt of LiteLLM's price
//! map turned into a catalog that our loader takes, exactly, and merged
//! into a catalog without losing its history.

use chargeback::catalog::Catalog;
use serde_json::Value;

use crate::util::TestDir;

const PRICES: &str = "fixtures/litellm-prices/model_prices_excerpt.json";
const CATALOG: &str = "fixtures/litellm-prices/model-catalog.json";

const IMPORT_REPORT: &str = "\
read 16 entries of `fixtures/litellm-prices/model_prices_excerpt.json`
imported 9 models, prices from 2025-11-01
skipped 7 entries: 1 sample_spec, 1 mode audio_speech, 1 mode audio_transcription, 1 mode embedding, 1 mode image_generation, 1 without an input or output price, 1 priced at zero
note: 3 models have other prices too (by context length, cache duration or tier, or for audio, image or reasoning tokens); the catalog holds their standard text-token prices only
";

fn import(t: &TestDir, extra: &[&str]) -> crate::util::Output {
    let mut args = vec![
        "catalog",
        "import-litellm",
        PRICES,
        "--effective-from",
        "2025-11-01",
    ];
    args.extend(extra);
    t.run(&args)
}

/// The one model of `provider` named `model` in a catalog file.
fn model<'a>(catalog: &'a Value, provider: &str, model: &str) -> &'a Value {
    catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["provider"] == provider && m["model"] == model)
        .unwrap_or_else(|| panic!("no {provider} {model}"))
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a str> {
    v["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut x = p;
            for k in path {
                x = &x[*k];
            }
            x.as_str().unwrap_or("-")
        })
        .collect()
}

#[test]
fn an_excerpt_of_litellm_imports_exactly_and_loads() {
    let t = TestDir::with_fixture("litellm-prices");
    let out = import(&t, &["--out", "catalog.json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!("{IMPORT_REPORT}wrote 9 models to `catalog.json`\n")
    );
    let text = t.read("catalog.json");
    let cat: Value = serde_json::from_str(&text).unwrap();

    // 2.5e-06 and 1e-05 per token, 1.25e-06 cached: exact per 1M tokens.
    let azure = model(&cat, "azure-openai", "gpt-4o");
    assert_eq!(field(azure, &["input"]), ["2.5"]);
    assert_eq!(field(azure, &["cached_input"]), ["1.25"]);
    assert_eq!(field(azure, &["output"]), ["10"]);
    assert_eq!(azure["aliases"], serde_json::json!(["azure/gpt-4o"]));
    let nova = model(
        &cat,
        "aws-bedrock",
        "amazon.nova-2-pro-preview-20251202-v1:0",
    );
    assert_eq!(field(nova, &["input"]), ["2.1875"]);
    assert_eq!(field(nova, &["cached_input"]), ["0.546875"]);
    let haiku = model(
        &cat,
        "aws-bedrock",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    );
    assert_eq!(field(haiku, &["cache_write"]), ["1"]);
    assert_eq!(field(haiku, &["cached_input"]), ["0.08"]);
    assert_eq!(
        model(&cat, "xai", "grok-4-1-fast")["context_window"],
        2_000_000
    );
    insta::assert_snapshot!("litellm_import_catalog", text);

    // Our own loader takes it, and resolves LiteLLM's names.
    let loaded = Catalog::parse(&text, "catalog.json").unwrap();
    let day = "2025-11-01".parse().unwrap();
    let p = loaded
        .prices_on(
            "aws-bedrock",
            "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0",
            day,
        )
        .unwrap();
    assert_eq!(p.input.to_string(), "0.8");
    let p = loaded
        .prices_on("vertex-ai", "vertex_ai/claude-3-5-sonnet", day)
        .unwrap();
    assert_eq!(p.output.to_string(), "15");
    assert!(
        loaded
            .prices_on("azure-openai", "gpt-4o", "2025-10-31".parse().unwrap())
            .is_none()
    );

    // The same bytes on stdout, and on every run.
    let again = import(&t, &[]);
    assert_eq!(again.code, 0);
    assert_eq!(again.stdout, text);
    assert_eq!(again.stderr, IMPORT_REPORT);
    assert_eq!(import(&t, &["-q"]).stderr, "");
}

#[test]
fn a_merge_keeps_the_catalogs_history_and_adds_only_new_prices() {
    let t = TestDir::with_fixture("litellm-prices");
    let before: Value = serde_json::from_str(&t.read(CATALOG)).unwrap();
    let out = import(&t, &["--merge", CATALOG, "--out", "merged.json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(
        out.stderr,
        format!(
            "{IMPORT_REPORT}\
             merged into `{CATALOG}`: 5 models added, 2 new price versions, 2 unchanged, 1 only in the catalog kept as it was
  aws-bedrock claude-3-5-haiku: input 0.80 · output 4.00 → input 0.8 · cached_input 0.08 · cache_write 1 · output 4 from 2025-11-01; 1 later set kept, the next from 2026-01-01
  azure-openai gpt-4o: input 2.75 · cached_input 1.375 · output 11.00 → input 2.5 · cached_input 1.25 · output 10 from 2025-11-01
wrote 10 models to `merged.json`
"
        )
    );
    let text = t.read("merged.json");
    Catalog::parse(&text, "merged.json").unwrap();
    let after: Value = serde_json::from_str(&text).unwrap();

    let gpt = model(&after, "azure-openai", "gpt-4o");
    assert_eq!(
        field(gpt, &["effective_from"]),
        ["2024-05-13", "2024-11-20", "2025-11-01"]
    );
    assert_eq!(field(gpt, &["input"]), ["5.00", "2.75", "2.5"]);
    // The catalog's own names, tier and window stay.
    assert_eq!(gpt["aliases"], serde_json::json!(["gpt-4o-2024-11-20"]));
    assert_eq!(gpt["tier"], "general");
    let haiku = model(&after, "aws-bedrock", "claude-3-5-haiku");
    assert_eq!(
        field(haiku, &["effective_from"]),
        ["2024-11-04", "2025-11-01", "2026-01-01"]
    );
    // Same prices, written otherwise (0.30 and 0.3): nothing new. A model
    // LiteLLM does not price: as it was.
    for (p, m) in [
        ("anthropic", "claude-3-haiku"),
        ("openai", "chatgpt-4o-latest"),
        ("openai", "gpt-3.5-turbo"),
    ] {
        assert_eq!(model(&after, p, m), model(&before, p, m), "{p} {m}");
    }
    assert_eq!(
        field(model(&after, "vertex-ai", "claude-3-5-sonnet"), &["input"]),
        ["3"]
    );

    // Merging the same prices again changes nothing, to the byte.
    let again = import(&t, &["--merge", "merged.json", "--out", "merged.json"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(
        again.stderr.contains(
            "merged into `merged.json`: 0 models added, 0 new price versions, 9 unchanged, 1 only in the catalog kept as it was\n"
        ),
        "{}",
        again.stderr
    );
    assert_eq!(t.read("merged.json"), text);
}

#[test]
fn bad_arguments_and_inputs_exit_with_the_right_code() {
    let t = TestDir::with_fixture("litellm-prices");
    let out = t.run(&["catalog", "import-litellm", PRICES]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--effective-from <DATE>"),
        "{}",
        out.stderr
    );

    let out = t.run(&[
        "catalog",
        "import-litellm",
        PRICES,
        "--effective-from",
        "1/11/2025",
    ]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: `--effective-from 1/11/2025` is not a date\nhint: write it as YYYY-MM-DD\n"
    );

    let out = t.run(&[
        "catalog",
        "import-litellm",
        "nope.json",
        "--effective-from",
        "2025-11-01",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: nope.json: no such file\nhint: check the FILE path\n"
    );

    // A hand edit that left a trailing comma.
    t.write("broken.json", "{\n  \"gpt-4o\": {\"mode\": \"chat\"},\n}\n");
    let out = t.run(&[
        "catalog",
        "import-litellm",
        "broken.json",
        "--effective-from",
        "2025-11-01",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: broken.json:3:1: cannot be read as LiteLLM's price map: trailing comma\n\
         hint: give the raw model_prices_and_context_window.json of BerriAI/litellm: one JSON \
         object whose keys are model names\n"
    );
    assert_eq!(out.stdout, "");

    t.write("eur.json", &t.read(CATALOG).replace("\"USD\"", "\"EUR\""));
    let out = import(&t, &["--merge", "eur.json"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: eur.json: the catalog prices in `EUR`, LiteLLM in `USD`\n\
         hint: merge LiteLLM's prices into a USD catalog only\n"
    );
}

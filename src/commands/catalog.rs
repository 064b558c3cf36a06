//! `chargeback catalog import-litellm`: LiteLLM's public price map
//! (`model_prices_and_context_window.json`) turned into our catalog
//! (DESIGN §3.3), alone or as new price versions of an existing catalog.
//! It owns reading that map and merging price histories; what it writes is
//! checked by the catalog's own loader, and it touches nothing of a month.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use serde_json::value::RawValue;

use crate::catalog::{Catalog, MAX_PRICE, ModelEntry, PriceSet, normalize_name};
use crate::cli::ImportLitellmArgs;
use crate::context::Context;
use crate::error::{Error, Location, Result};
use crate::load::ingest::provider::provider_id;
use crate::money::{Decimal, json_number_exact};
use crate::text::count;

/// LiteLLM's modes priced per text token of a conversation. The others
/// (embedding, image_generation, audio_transcription, audio_speech,
/// moderation, rerank, search, …) bill by other units or for other work.
const TOKEN_MODES: [&str; 3] = ["chat", "completion", "responses"];

/// The key that documents the map's schema instead of pricing a model.
const SAMPLE_SPEC: &str = "sample_spec";

/// LiteLLM prices per token; the catalog per 1M tokens: 10^6.
const PER_MTOK_SHIFT: i32 = 6;

/// Why an entry of the map is not in the catalog, in the order the report
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Skip {
    SampleSpec,
    Mode(String),
    NoMode,
    NotAnEntry,
    NoProvider,
    NoPrice,
    ZeroPrice,
    NotExact,
    OutOfRange,
    Duplicate,
}

impl Skip {
    fn label(&self) -> String {
        match self {
            Skip::SampleSpec => SAMPLE_SPEC.to_string(),
            Skip::Mode(m) => format!("mode {m}"),
            Skip::NoMode => "without a mode".to_string(),
            Skip::NotAnEntry => "not a model entry".to_string(),
            Skip::NoProvider => "without a litellm_provider".to_string(),
            Skip::NoPrice => "without an input or output price".to_string(),
            Skip::ZeroPrice => "priced at zero".to_string(),
            Skip::NotExact => "with a price that is not an exact number".to_string(),
            Skip::OutOfRange => format!("with a price below 0 or above {MAX_PRICE} per 1M tokens"),
            Skip::Duplicate => "the same model as another entry, at other prices".to_string(),
        }
    }
}

/// An entry of the map read as a model, before duplicates are settled.
#[derive(Debug)]
struct Candidate {
    key: String,
    provider: String,
    model: String,
    /// The key began with the provider (`azure/gpt-4o`), now dropped.
    prefixed: bool,
    prices: PriceSet,
    context_window: Option<u64>,
}

/// The map read into catalog entries, and what was left out and why.
#[derive(Debug, Default)]
struct Conversion {
    entries: u64,
    models: Vec<ModelEntry>,
    skipped: BTreeMap<Skip, u64>,
    /// One line per skip a reader should check by name.
    details: Vec<String>,
    /// Models whose entry also has prices the catalog has no field for.
    other_prices: u64,
    /// Aliases dropped because another model already has that name.
    dropped_aliases: u64,
}

pub fn import_litellm(ctx: &Context, args: &ImportLitellmArgs) -> Result<()> {
    let day: NaiveDate = args.effective_from.parse().map_err(|_| {
        Error::usage(format!(
            "`--effective-from {}` is not a date",
            args.effective_from
        ))
        .with_hint("write it as YYYY-MM-DD")
    })?;
    let file = &args.file;
    let text = read_named(ctx, file, "check the FILE path")?;
    let conversion = convert(&text, file, day)?;

    let mut report = vec![format!(
        "read {} of `{file}`",
        count(conversion.entries, "entry", "entries")
    )];
    report.push(format!(
        "imported {}, prices from {day}",
        count(conversion.models.len() as u64, "model", "models")
    ));
    if !conversion.skipped.is_empty() {
        let total: u64 = conversion.skipped.values().sum();
        let reasons: Vec<String> = conversion
            .skipped
            .iter()
            .map(|(why, n)| format!("{n} {}", why.label()))
            .collect();
        report.push(format!(
            "skipped {}: {}",
            count(total, "entry", "entries"),
            reasons.join(", ")
        ));
    }
    report.extend(conversion.details.iter().map(|d| format!("  {d}")));
    if conversion.other_prices > 0 {
        report.push(format!(
            "note: {} other prices too (by context length, cache duration or tier, or for \
             audio, image or reasoning tokens); the catalog holds their standard text-token \
             prices only",
            count(conversion.other_prices, "model has", "models have")
        ));
    }
    if conversion.dropped_aliases > 0 {
        report.push(format!(
            "note: {} left out: another model already has that name",
            count(conversion.dropped_aliases, "alias", "aliases")
        ));
    }

    let (currency, models) = match &args.merge {
        None => ("USD".to_string(), conversion.models),
        Some(url) => {
            let existing = Catalog::parse(
                &read_named(ctx, url, "check the `--merge` catalog path")?,
                url,
            )?;
            if existing.currency != "USD" {
                return Err(Error::input(
                    Location::file(url),
                    format!(
                        "the catalog prices in `{}`, LiteLLM in `USD`",
                        existing.currency
                    ),
                )
                .with_hint("merge LiteLLM's prices into a USD catalog only"));
            }
            let merged = merge(existing.models, conversion.models, day);
            report.push(format!(
                "merged into `{url}`: {} added, {}, {} unchanged, {} only in the catalog kept as {}",
                count(merged.added, "model", "models"),
                count(
                    merged.changed.len() as u64,
                    "new price version",
                    "new price versions"
                ),
                merged.unchanged,
                merged.kept,
                if merged.kept == 1 { "it was" } else { "they were" },
            ));
            report.extend(merged.changed.iter().map(|d| format!("  {d}")));
            report.extend(merged.conflicts.iter().map(|d| format!("  {d}")));
            (existing.currency, merged.models)
        }
    };

    let json = Catalog::to_json(&currency, &models);
    let out_name = args.out.as_deref().unwrap_or("stdout");
    // What we write must load as a catalog: the same checks every run makes.
    Catalog::parse(&json, out_name).map_err(|e| {
        Error::input(
            Location::file(file),
            format!("the imported catalog does not load: {e}"),
        )
        .with_hint("this is a bug in chargeback's import, not in your file; please report it")
    })?;
    match &args.out {
        Some(out) => {
            ctx.store.write(out, json.as_bytes())?;
            report.push(format!(
                "wrote {} to `{out}`",
                count(models.len() as u64, "model", "models")
            ));
        }
        None => super::say(&json),
    }
    if !args.quiet {
        eprint!(
            "{}",
            report.iter().map(|l| format!("{l}\n")).collect::<String>()
        );
    }
    Ok(())
}

/// The text of a file named on the command line; a missing one gets a
/// hint about that argument, not about a policy's [sources].
fn read_named(ctx: &Context, url: &str, hint: &str) -> Result<String> {
    if !ctx.store.try_exists(url)? {
        return Err(Error::input(Location::file(url), "no such file").with_hint(hint));
    }
    ctx.store.read_text(url)
}

/// LiteLLM's map as catalog entries, sorted by provider and model, each
/// with one price set from `day`.
fn convert(text: &str, uri: &str, day: NaiveDate) -> Result<Conversion> {
    // Keys sorted: the result does not depend on the order of the file.
    let map: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(|e| {
        let line = e.line();
        let column = e.column();
        // serde_json ends its message with the position we already give.
        let message = e.to_string();
        let message = message
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&message)
            .to_string();
        Error::input(
            Location {
                uri: uri.to_string(),
                row: (line > 0).then_some(line as u64),
                column: (line > 0).then(|| column.to_string()),
            },
            format!("cannot be read as LiteLLM's price map: {message}"),
        )
        .with_hint(
            "give the raw model_prices_and_context_window.json of BerriAI/litellm: one JSON \
             object whose keys are model names",
        )
    })?;

    let mut out = Conversion {
        entries: map.len() as u64,
        ..Conversion::default()
    };
    let mut candidates: BTreeMap<(String, String), Vec<Candidate>> = BTreeMap::new();
    let mut other_prices: HashSet<String> = HashSet::new();
    for (key, raw) in &map {
        match candidate(key, raw, day) {
            Ok((c, other)) => {
                if other {
                    other_prices.insert(c.key.clone());
                }
                candidates
                    .entry((c.provider.clone(), normalize_name(&c.model)))
                    .or_default()
                    .push(c);
            }
            Err((why, detail)) => {
                *out.skipped.entry(why).or_default() += 1;
                out.details.extend(detail);
            }
        }
    }

    for (_, mut group) in candidates {
        // The entry named without a provider prefix speaks for the model
        // (`gemini-2.5-pro` over `gemini/gemini-2.5-pro`); among equals,
        // the first key by name.
        group.sort_by(|a, b| a.prefixed.cmp(&b.prefixed).then(a.key.cmp(&b.key)));
        let mut group = group.into_iter();
        let kept = group.next().expect("a group has an entry");
        let mut aliases: Vec<String> = Vec::new();
        if kept.prefixed {
            aliases.push(kept.key.clone());
        }
        for other in group {
            if other.prices.same_prices(&kept.prices) {
                aliases.push(other.key);
            } else {
                *out.skipped.entry(Skip::Duplicate).or_default() += 1;
                out.details.push(format!(
                    "`{}` is {} `{}` as `{}` is, which was kept",
                    other.key, kept.provider, kept.model, kept.key
                ));
            }
        }
        // One spelling per name: the loader looks names up in any case.
        let mut seen = HashSet::from([normalize_name(&kept.model)]);
        aliases.retain(|a| seen.insert(normalize_name(a)));
        if other_prices.contains(&kept.key) {
            out.other_prices += 1;
        }
        out.models.push(ModelEntry {
            provider: kept.provider,
            model: kept.model,
            aliases,
            tier: None,
            context_window: kept.context_window,
            source: Some(format!(
                "LiteLLM model_prices_and_context_window.json `{}`",
                kept.key
            )),
            refreshed: None,
            prices: vec![kept.prices],
        });
    }
    out.models
        .sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
    out.dropped_aliases = drop_taken_aliases(&mut out.models);
    Ok(out)
}

/// Drops each alias that is another model's name or alias in the same
/// provider (the loader refuses a name that stands for two models); the
/// earlier model by provider and name keeps it. Returns how many.
fn drop_taken_aliases(models: &mut [ModelEntry]) -> u64 {
    let mut owner: HashMap<(String, String), usize> = HashMap::new();
    for (i, m) in models.iter().enumerate() {
        owner.insert((m.provider.clone(), normalize_name(&m.model)), i);
    }
    let mut dropped = 0;
    for (i, m) in models.iter_mut().enumerate() {
        let provider = m.provider.clone();
        m.aliases.retain(|a| {
            let slot = owner
                .entry((provider.clone(), normalize_name(a)))
                .or_insert(i);
            let keep = *slot == i;
            if !keep {
                dropped += 1;
            }
            keep
        });
    }
    dropped
}

type SkipWhy = (Skip, Option<String>);

/// One entry of the map as a model, and whether it has prices beyond the
/// four the catalog holds; or why it is skipped.
fn candidate(
    key: &str,
    raw: &RawValue,
    day: NaiveDate,
) -> std::result::Result<(Candidate, bool), SkipWhy> {
    if key == SAMPLE_SPEC {
        return Err((Skip::SampleSpec, None));
    }
    let fields: BTreeMap<String, &RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| (Skip::NotAnEntry, None))?;
    let field = |name: &str| fields.get(name).copied().filter(|v| v.get() != "null");
    let string =
        |name: &str| field(name).and_then(|v| serde_json::from_str::<String>(v.get()).ok());

    let mode = match (string("mode"), field("mode")) {
        (Some(m), _) => m,
        (None, Some(v)) => return Err((Skip::Mode(v.get().to_string()), None)),
        (None, None) => return Err((Skip::NoMode, None)),
    };
    if !TOKEN_MODES.contains(&mode.as_str()) {
        return Err((Skip::Mode(mode), None));
    }
    let Some(litellm_provider) = string("litellm_provider") else {
        return Err((Skip::NoProvider, None));
    };
    let provider = provider_id(&litellm_provider);
    let (model, prefixed) = match key.split_once('/') {
        Some((prefix, rest)) if !rest.is_empty() && provider_id(prefix) == provider => {
            (rest.to_string(), true)
        }
        _ => (key.to_string(), false),
    };
    if model.trim().is_empty() || provider.is_empty() {
        return Err((Skip::NotAnEntry, None));
    }

    let price = |name: &str| -> std::result::Result<Option<Decimal>, SkipWhy> {
        let Some(v) = field(name) else {
            return Ok(None);
        };
        let p = json_number_exact(v.get(), PER_MTOK_SHIFT)
            .map_err(|e| (Skip::NotExact, Some(format!("`{key}`: `{name}`: {e}"))))?;
        if p < Decimal::ZERO || p > MAX_PRICE {
            return Err((
                Skip::OutOfRange,
                Some(format!(
                    "`{key}`: `{name}` is {p} per 1M tokens ({} per token)",
                    v.get()
                )),
            ));
        }
        Ok(Some(p.normalize()))
    };
    let input = price("input_cost_per_token")?;
    let output = price("output_cost_per_token")?;
    let cached_input = price("cache_read_input_token_cost")?;
    let cache_write = price("cache_creation_input_token_cost")?;
    let (Some(input), Some(output)) = (input, output) else {
        return Err((Skip::NoPrice, None));
    };
    // A price map writes 0 for "free" and for "not known" alike; a model
    // charged nothing by mistake would go unnoticed, one left out is
    // listed by every reconciliation as unpriced.
    if [Some(input), Some(output), cached_input, cache_write]
        .into_iter()
        .flatten()
        .all(|p| p.is_zero())
    {
        return Err((Skip::ZeroPrice, None));
    }
    let known = [
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
    ];
    let other = fields.iter().any(|(name, v)| {
        name.contains("cost")
            && !known.contains(&name.as_str())
            && v.get() != "null"
            && json_number_exact(v.get(), 0).is_ok_and(|d| !d.is_zero())
    });
    let context_window = field("max_input_tokens")
        .and_then(|v| json_number_exact(v.get(), 0).ok())
        .filter(|d| d.fract().is_zero())
        .and_then(|d| d.to_u64());
    Ok((
        Candidate {
            key: key.to_string(),
            provider,
            model,
            prefixed,
            prices: PriceSet {
                effective_from: day,
                input,
                cached_input,
                cache_write,
                output,
            },
            context_window,
        },
        other,
    ))
}

/// An existing catalog with the imported prices merged in.
#[derive(Debug)]
struct Merged {
    models: Vec<ModelEntry>,
    added: u64,
    /// One line per new price version.
    changed: Vec<String>,
    unchanged: u64,
    /// Catalog models LiteLLM does not price.
    kept: u64,
    /// Imported models that name a catalog model another one already
    /// updated: not applied.
    conflicts: Vec<String>,
}

/// Merges imported models (one price set each, from `day`) into a
/// catalog's: a catalog model keeps its history, names, tier and context
/// window, and gets a price set from `day` when its price in force that
/// day differs (replacing one of that very day; later ones stay). Models
/// match by name or alias (any case) within a provider; a match by model
/// name goes before one by alias.
fn merge(existing: Vec<ModelEntry>, imported: Vec<ModelEntry>, day: NaiveDate) -> Merged {
    let mut names: HashMap<(String, String), usize> = HashMap::new();
    for (i, m) in existing.iter().enumerate() {
        let provider = normalize_name(&m.provider);
        for name in std::iter::once(&m.model).chain(&m.aliases) {
            names.insert((provider.clone(), normalize_name(name)), i);
        }
    }
    let lookup = |m: &ModelEntry, name: &str| {
        names
            .get(&(normalize_name(&m.provider), normalize_name(name)))
            .copied()
    };
    // (rank, import index, catalog index): rank 0 by model name, 1 by alias.
    let mut matches: Vec<(u8, usize, usize)> = Vec::new();
    let mut unmatched: Vec<usize> = Vec::new();
    for (j, m) in imported.iter().enumerate() {
        if let Some(i) = lookup(m, &m.model) {
            matches.push((0, j, i));
        } else if let Some(i) = m.aliases.iter().find_map(|a| lookup(m, a)) {
            matches.push((1, j, i));
        } else {
            unmatched.push(j);
        }
    }
    matches.sort_unstable();

    let mut models = existing;
    let mut claimed: HashMap<usize, usize> = HashMap::new();
    let mut merged = Merged {
        models: Vec::new(),
        added: 0,
        changed: Vec::new(),
        unchanged: 0,
        kept: 0,
        conflicts: Vec::new(),
    };
    for (_, j, i) in matches {
        let new = &imported[j];
        if let Some(&first) = claimed.get(&i) {
            merged.conflicts.push(format!(
                "{} `{}` is `{}` of the catalog, already priced from `{}`: not applied",
                new.provider, new.model, models[i].model, imported[first].model
            ));
            continue;
        }
        claimed.insert(i, j);
        let set = new.prices[0].clone();
        let entry = &mut models[i];
        let in_force = entry.prices.iter().rev().find(|p| p.effective_from <= day);
        if in_force.is_some_and(|p| p.same_prices(&set)) {
            merged.unchanged += 1;
            continue;
        }
        let mut line = format!(
            "{} {}: {} → {} from {day}",
            entry.provider,
            entry.model,
            in_force.map_or_else(|| "no price".to_string(), describe),
            describe(&set)
        );
        if let Some(same_day) = entry.prices.iter_mut().find(|p| p.effective_from == day) {
            *same_day = set;
            line.push_str(" (replaces the set of that day)");
        } else {
            entry.prices.push(set);
            entry.prices.sort_by_key(|p| p.effective_from);
        }
        let later: Vec<&PriceSet> = entry
            .prices
            .iter()
            .filter(|p| p.effective_from > day)
            .collect();
        if let Some(next) = later.first() {
            line.push_str(&format!(
                "; {} kept, the next from {}",
                count(later.len() as u64, "later set", "later sets"),
                next.effective_from
            ));
        }
        merged.changed.push(line);
    }
    merged.kept = (models.len() - claimed.len()) as u64;
    for j in unmatched {
        models.push(imported[j].clone());
        merged.added += 1;
    }
    models.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
    merged.models = models;
    merged
}

/// A price set in a report line: `input 2.5 · cached_input 1.25 · output 10`.
fn describe(p: &PriceSet) -> String {
    let mut parts = vec![format!("input {}", p.input)];
    if let Some(c) = p.cached_input {
        parts.push(format!("cached_input {c}"));
    }
    if let Some(c) = p.cache_write {
        parts.push(format!("cache_write {c}"));
    }
    parts.push(format!("output {}", p.output));
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn convert_ok(text: &str) -> Conversion {
        convert(text, "prices.json", day("2025-11-01")).unwrap()
    }

    fn model<'a>(c: &'a [ModelEntry], provider: &str, name: &str) -> &'a ModelEntry {
        c.iter()
            .find(|m| m.provider == provider && m.model == name)
            .unwrap_or_else(|| panic!("no {provider} {name} in {c:#?}"))
    }

    #[test]
    fn prices_per_token_become_exact_prices_per_mtok() {
        let c = convert_ok(
            r#"{
              "azure/gpt-4o": {"litellm_provider": "azure", "mode": "chat",
                "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                "cache_read_input_token_cost": 1.25E-6, "max_input_tokens": 128000},
              "amazon.nova-2-pro-preview-20251202-v1:0": {"litellm_provider": "bedrock_converse",
                "mode": "chat", "input_cost_per_token": 2.1875e-06, "output_cost_per_token": 1.75e-05,
                "cache_read_input_token_cost": 5.46875e-07, "max_input_tokens": 1000000.0},
              "claude-3-haiku-20240307": {"litellm_provider": "anthropic", "mode": "chat",
                "input_cost_per_token": 0.00000025, "output_cost_per_token": 1.25e-06,
                "cache_creation_input_token_cost": 3e-07, "cache_read_input_token_cost": 3e-08}
            }"#,
        );
        let azure = model(&c.models, "azure-openai", "gpt-4o");
        assert_eq!(azure.aliases, ["azure/gpt-4o"]);
        assert_eq!(azure.context_window, Some(128_000));
        let p = &azure.prices[0];
        let s = |d: Decimal| d.to_string();
        assert_eq!(
            (s(p.input), p.cached_input.map(s), s(p.output)),
            ("2.5".into(), Some("1.25".into()), "10".into())
        );
        assert_eq!(p.effective_from, day("2025-11-01"));
        let nova = model(
            &c.models,
            "aws-bedrock",
            "amazon.nova-2-pro-preview-20251202-v1:0",
        );
        assert!(nova.aliases.is_empty());
        assert_eq!(nova.context_window, Some(1_000_000));
        assert_eq!(s(nova.prices[0].input), "2.1875");
        assert_eq!(nova.prices[0].cached_input.map(s).unwrap(), "0.546875");
        let claude = &model(&c.models, "anthropic", "claude-3-haiku-20240307").prices[0];
        assert_eq!(s(claude.input), "0.25");
        assert_eq!(claude.cache_write.map(s).unwrap(), "0.3");
        assert_eq!(claude.cached_input.map(s).unwrap(), "0.03");
        assert!(c.skipped.is_empty());
    }

    #[test]
    fn skipped_entries_are_counted_by_reason() {
        let c = convert_ok(
            r#"{
              "sample_spec": {"mode": "one of: chat, embedding", "input_cost_per_token": 0.0},
              "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding",
                "input_cost_per_token": 2e-08, "output_cost_per_token": 0.0},
              "together_ai/Qwen/Qwen2.5-7B-Instruct-Turbo": {"litellm_provider": "together_ai", "mode": "chat"},
              "free/model": {"litellm_provider": "free", "mode": "chat",
                "input_cost_per_token": 0, "output_cost_per_token": 0.0},
              "odd": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": "0.01", "output_cost_per_token": 1e-6},
              "dear": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": 2, "output_cost_per_token": 1e-6},
              "nomode": {"litellm_provider": "openai", "input_cost_per_token": 1e-6},
              "list": [1, 2]
            }"#,
        );
        assert!(c.models.is_empty());
        let got: Vec<(String, u64)> = c.skipped.iter().map(|(k, n)| (k.label(), *n)).collect();
        let want: Vec<(String, u64)> = [
            ("sample_spec", 1),
            ("mode embedding", 1),
            ("without a mode", 1),
            ("not a model entry", 1),
            ("without an input or output price", 1),
            ("priced at zero", 1),
            ("with a price that is not an exact number", 1),
            ("with a price below 0 or above 1000000 per 1M tokens", 1),
        ]
        .iter()
        .map(|(l, n)| (l.to_string(), *n))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            c.details,
            [
                "`dear`: `input_cost_per_token` is 2000000 per 1M tokens (2 per token)",
                "`odd`: `input_cost_per_token`: `\"0.01\"` is not a number",
            ]
        );
    }

    #[test]
    fn duplicates_keep_the_unprefixed_entry_and_say_so() {
        let c = convert_ok(
            r#"{
              "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "mode": "chat",
                "input_cost_per_token": 1.3e-06, "output_cost_per_token": 1e-05},
              "gemini-2.5-pro": {"litellm_provider": "vertex_ai-language-models", "mode": "chat",
                "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05},
              "vertex_ai/gemini-2.5-pro": {"litellm_provider": "vertex_ai-language-models", "mode": "chat",
                "input_cost_per_token": 0.00000125, "output_cost_per_token": 0.000010},
              "together_ai/BAAI/m": {"litellm_provider": "together_ai", "mode": "chat",
                "input_cost_per_token": 1e-07, "output_cost_per_token": 1e-07},
              "together_ai/baai/m": {"litellm_provider": "together_ai", "mode": "chat",
                "input_cost_per_token": 1e-07, "output_cost_per_token": 1e-07}
            }"#,
        );
        let g = model(&c.models, "vertex-ai", "gemini-2.5-pro");
        assert_eq!(g.prices[0].input.to_string(), "1.25");
        // Same prices: one more name for the model.
        assert_eq!(g.aliases, ["vertex_ai/gemini-2.5-pro"]);
        assert_eq!(c.skipped.get(&Skip::Duplicate), Some(&1));
        assert_eq!(
            c.details,
            [
                "`gemini/gemini-2.5-pro` is vertex-ai `gemini-2.5-pro` as `gemini-2.5-pro` is, which was kept"
            ]
        );
        // Names differing in case only are one model (the loader looks
        // names up in any case): the first key wins, one spelling stays.
        let m = model(&c.models, "together-ai", "BAAI/m");
        assert_eq!(m.aliases, ["together_ai/BAAI/m"]);
        assert_eq!(c.models.len(), 2);
        Catalog::parse(&Catalog::to_json("USD", &c.models), "out.json").unwrap();
    }

    fn entry(
        provider: &str,
        model: &str,
        aliases: &[&str],
        sets: &[(&str, &str, &str)],
    ) -> ModelEntry {
        ModelEntry {
            provider: provider.into(),
            model: model.into(),
            aliases: aliases.iter().map(ToString::to_string).collect(),
            tier: Some("general".into()),
            context_window: Some(1000),
            source: None,
            refreshed: None,
            prices: sets
                .iter()
                .map(|(d, i, o)| PriceSet {
                    effective_from: day(d),
                    input: i.parse().unwrap(),
                    cached_input: None,
                    cache_write: None,
                    output: o.parse().unwrap(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_merge_keeps_history_and_adds_a_set_only_for_a_new_price() {
        let existing = vec![
            entry(
                "openai",
                "gpt-4o",
                &["gpt-4o-2024-08-06"],
                &[("2024-01-01", "5.00", "15.00")],
            ),
            entry(
                "openai",
                "gpt-4o-mini",
                &[],
                &[("2024-01-01", "0.15", "0.60")],
            ),
            entry(
                "anthropic",
                "claude-3-5-sonnet",
                &["claude-3-5-sonnet-20241022"],
                &[("2024-01-01", "3", "15"), ("2026-01-01", "4", "20")],
            ),
            entry("openai", "davinci", &[], &[("2020-01-01", "20", "20")]),
        ];
        let imported = vec![
            entry("openai", "GPT-4o", &[], &[("2025-11-01", "2.5", "10")]),
            entry(
                "openai",
                "gpt-4o-mini",
                &[],
                &[("2025-11-01", "0.15", "0.6")],
            ),
            entry(
                "anthropic",
                "claude-3-5-sonnet-20241022",
                &[],
                &[("2025-11-01", "3.5", "15")],
            ),
            entry("openai", "gpt-5", &[], &[("2025-11-01", "1.25", "10")]),
        ];
        let m = merge(existing, imported, day("2025-11-01"));
        assert_eq!((m.added, m.unchanged, m.kept), (1, 1, 1));
        assert_eq!(
            m.changed,
            [
                "openai gpt-4o: input 5.00 · output 15.00 → input 2.5 · output 10 from 2025-11-01",
                "anthropic claude-3-5-sonnet: input 3 · output 15 → input 3.5 · output 15 from \
                 2025-11-01; 1 later set kept, the next from 2026-01-01",
            ]
        );
        let gpt = model(&m.models, "openai", "gpt-4o");
        let dates: Vec<String> = gpt
            .prices
            .iter()
            .map(|p| p.effective_from.to_string())
            .collect();
        assert_eq!(dates, ["2024-01-01", "2025-11-01"]);
        assert_eq!(gpt.aliases, ["gpt-4o-2024-08-06"]);
        assert_eq!(gpt.tier.as_deref(), Some("general"));
        let sonnet = model(&m.models, "anthropic", "claude-3-5-sonnet");
        assert_eq!(sonnet.prices.len(), 3);
        assert_eq!(sonnet.prices[2].input.to_string(), "4");
        assert_eq!(model(&m.models, "openai", "gpt-4o-mini").prices.len(), 1);
        assert_eq!(model(&m.models, "openai", "davinci").prices.len(), 1);
        let order: Vec<&str> = m.models.iter().map(|e| e.model.as_str()).collect();
        assert_eq!(
            order,
            [
                "claude-3-5-sonnet",
                "davinci",
                "gpt-4o",
                "gpt-4o-mini",
                "gpt-5"
            ]
        );

        // The same import again changes nothing.
        let again = merge(
            m.models.clone(),
            vec![entry(
                "openai",
                "gpt-4o",
                &[],
                &[("2025-11-01", "2.50", "10.0")],
            )],
            day("2025-11-01"),
        );
        assert!(again.changed.is_empty());
        assert_eq!(again.unchanged, 1);
    }

    #[test]
    fn a_merge_on_a_day_with_a_set_replaces_it_and_two_names_of_one_model_conflict() {
        let existing = vec![entry(
            "openai",
            "gpt-4o",
            &["gpt-4o-2024-08-06"],
            &[("2024-01-01", "5", "15"), ("2025-11-01", "3", "12")],
        )];
        let imported = vec![
            entry("openai", "gpt-4o", &[], &[("2025-11-01", "2.5", "10")]),
            entry(
                "openai",
                "gpt-4o-2024-08-06",
                &[],
                &[("2025-11-01", "2.75", "11")],
            ),
        ];
        let m = merge(existing, imported, day("2025-11-01"));
        assert_eq!(
            m.changed,
            [
                "openai gpt-4o: input 3 · output 12 → input 2.5 · output 10 from 2025-11-01 \
              (replaces the set of that day)"
            ]
        );
        assert_eq!(
            m.conflicts,
            [
                "openai `gpt-4o-2024-08-06` is `gpt-4o` of the catalog, already priced from \
              `gpt-4o`: not applied"
            ]
        );
        assert_eq!(m.models.len(), 1);
        assert_eq!(m.models[0].prices.len(), 2);
        assert_eq!(m.models[0].prices[1].input.to_string(), "2.5");
    }

    #[test]
    fn bad_json_points_at_line_and_column() {
        let e = convert(
            "{\n  \"a\": {\"mode\": \"chat\",}\n}",
            "p.json",
            day("2025-01-01"),
        )
        .unwrap_err();
        assert_eq!(
            e.report(),
            "error: p.json:2:24: cannot be read as LiteLLM's price map: key must be a string\n\
             hint: give the raw model_prices_and_context_window.json of BerriAI/litellm: one \
             JSON object whose keys are model names\n"
        );
        assert_eq!(e.exit_code(), 1);
    }
}

//! The price catalog (`model-catalog.json`): models, aliases and
//! effective-dated prices per 1M tokens, as exact decimals.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use crate::money::Decimal;
use crate::schema::usage_type;

/// A token class: the unit a price applies to and a bill may break out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageType {
    Input,
    CachedInput,
    CacheWrite,
    Output,
}

impl UsageType {
    pub const ALL: [UsageType; 4] = [
        UsageType::Input,
        UsageType::CachedInput,
        UsageType::CacheWrite,
        UsageType::Output,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UsageType::Input => usage_type::INPUT,
            UsageType::CachedInput => usage_type::CACHED_INPUT,
            UsageType::CacheWrite => usage_type::CACHE_WRITE,
            UsageType::Output => usage_type::OUTPUT,
        }
    }

    /// Reads a `usage_type` value; `other` and unknown words are `None`.
    pub fn parse(text: &str) -> Option<UsageType> {
        let t = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match t.as_str() {
            "input" | "input_tokens" | "uncached_input" | "prompt" => Some(UsageType::Input),
            "cached_input" | "cache_read" | "cached_input_tokens" | "cache_read_input" => {
                Some(UsageType::CachedInput)
            }
            "cache_write" | "cache_creation" | "cache_write_input" => Some(UsageType::CacheWrite),
            "output" | "output_tokens" | "completion" => Some(UsageType::Output),
            _ => None,
        }
    }
}

impl fmt::Display for UsageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default = "usd")]
    pub currency: String,
    pub models: Vec<ModelEntry>,
    #[serde(skip)]
    names: HashMap<(String, String), usize>,
    /// (provider, name without punctuation) → entry; `None` when two
    /// entries collide that way.
    #[serde(skip)]
    compact: HashMap<(String, String), Option<usize>>,
}

fn usd() -> String {
    "USD".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub provider: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<NaiveDate>,
    pub prices: Vec<PriceSet>,
}

/// Prices per 1M tokens in force from `effective_from` until the next set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSet {
    pub effective_from: NaiveDate,
    pub input: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Decimal>,
    pub output: Decimal,
}

impl PriceSet {
    /// Price per 1M tokens of a class. A class the catalog leaves out is
    /// priced as uncached input: the conservative reading.
    pub fn per_mtok(&self, t: UsageType) -> Decimal {
        match t {
            UsageType::Input => self.input,
            UsageType::CachedInput => self.cached_input.unwrap_or(self.input),
            UsageType::CacheWrite => self.cache_write.unwrap_or(self.input),
            UsageType::Output => self.output,
        }
    }

    /// Whether two sets charge the same for every token class (a class
    /// left out is compared as the input price it stands for), whatever
    /// their dates and however their decimals are written.
    pub fn same_prices(&self, other: &PriceSet) -> bool {
        UsageType::ALL
            .iter()
            .all(|&t| self.per_mtok(t) == other.per_mtok(t))
    }

    /// Exact cost of `tokens` tokens of a class.
    pub fn cost(&self, t: UsageType, tokens: u64) -> Decimal {
        Decimal::from(tokens) * self.per_mtok(t) / Decimal::from(1_000_000u64)
    }
}

/// The largest price per 1M tokens a catalog may state (a unit of money
/// per token): with it, the cost of any `u64` token count fits a `Decimal`.
pub const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// Providers that resell other publishers' models.
pub const MARKETPLACES: [&str; 3] = ["aws-bedrock", "azure-openai", "vertex-ai"];

/// Lower-cases and trims a model or provider name for matching.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A lower-cased model id without a cloud's decorations: region and vendor
/// prefixes (`us.anthropic.`), version suffixes (`-v1:0`, `:0`) and a dated
/// snapshot suffix (`-20240620`, `-2024-08-06`).
fn undecorated(name: &str) -> String {
    let mut s = name;
    for prefix in ["us.", "eu.", "apac.", "global.", "jp.", "au."] {
        s = s.strip_prefix(prefix).unwrap_or(s);
    }
    for vendor in [
        "anthropic.",
        "amazon.",
        "meta.",
        "mistral.",
        "cohere.",
        "ai21.",
        "openai.",
        "deepseek.",
        "google.",
        "writer.",
        "qwen.",
    ] {
        s = s.strip_prefix(vendor).unwrap_or(s);
    }
    let mut s = s.to_string();
    if let Some(at) = s.rfind(':')
        && s[at + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        s.truncate(at);
    }
    if let Some(at) = s.rfind("-v")
        && s.len() > at + 2
        && s[at + 2..].bytes().all(|b| b.is_ascii_digit())
    {
        s.truncate(at);
    }
    // -20240620
    if s.len() > 9
        && s.as_bytes()[s.len() - 9] == b'-'
        && s[s.len() - 8..].bytes().all(|b| b.is_ascii_digit())
    {
        s.truncate(s.len() - 9);
    }
    // -2024-08-06
    let b = s.as_bytes();
    if b.len() > 11
        && b[b.len() - 11] == b'-'
        && b[b.len() - 6] == b'-'
        && b[b.len() - 3] == b'-'
        && s[s.len() - 10..].bytes().filter(u8::is_ascii_digit).count() == 8
    {
        s.truncate(s.len() - 11);
    }
    s
}

/// A name with everything but letters and digits removed.
fn compact(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Catalog {
    /// The catalog as its file holds it: pretty JSON, models in the order
    /// given, fields left out when empty, prices as decimal strings.
    pub fn to_json(currency: &str, models: &[ModelEntry]) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            currency: &'a str,
            models: &'a [ModelEntry],
        }
        let mut text =
            serde_json::to_string_pretty(&File { currency, models }).expect("a catalog serializes");
        text.push('\n');
        text
    }

    pub fn parse(text: &str, uri: &str) -> Result<Catalog> {
        let mut cat: Catalog = serde_json::from_str(text).map_err(|e| {
            Error::policy(
                Location {
                    uri: uri.to_string(),
                    row: Some(e.line() as u64),
                    column: Some(e.column().to_string()),
                },
                format!("the catalog is not valid: {e}"),
            )
            .with_hint(
                "the catalog's shape is in README.md, section “Price catalog”; prices are decimal strings per 1M tokens",
            )
        })?;
        cat.index(uri)?;
        Ok(cat)
    }

    fn index(&mut self, uri: &str) -> Result<()> {
        let bad = |m: String| Error::policy(Location::file(uri), m);
        for (i, m) in self.models.iter_mut().enumerate() {
            if m.prices.is_empty() {
                return Err(bad(format!("model `{}` has no prices", m.model)));
            }
            m.prices.sort_by_key(|p| p.effective_from);
            for w in m.prices.windows(2) {
                if w[0].effective_from == w[1].effective_from {
                    return Err(bad(format!(
                        "model `{}` has two prices effective from {}",
                        m.model, w[0].effective_from
                    )));
                }
            }
            for p in &m.prices {
                let all = [Some(p.input), p.cached_input, p.cache_write, Some(p.output)];
                if all.into_iter().flatten().any(|v| v < Decimal::ZERO) {
                    return Err(bad(format!("model `{}` has a negative price", m.model)));
                }
                // A bound that keeps `tokens × price` inside a `Decimal`
                // for any u64 token count.
                if all.into_iter().flatten().any(|v| v > MAX_PRICE) {
                    return Err(bad(format!(
                        "model `{}` has a price above {MAX_PRICE} per 1M tokens",
                        m.model
                    )));
                }
            }
            let provider = normalize_name(&m.provider);
            for name in std::iter::once(&m.model).chain(&m.aliases) {
                let key = (provider.clone(), normalize_name(name));
                if let Some(&j) = self.names.get(&key)
                    && j != i
                {
                    return Err(bad(format!(
                        "the name `{name}` of provider `{provider}` stands for two models"
                    )));
                }
                let c = (
                    provider.clone(),
                    compact(&undecorated(&normalize_name(name))),
                );
                self.names.insert(key, i);
                let slot = self.compact.entry(c).or_insert(Some(i));
                if *slot != Some(i) {
                    *slot = None;
                }
            }
        }
        Ok(())
    }

    /// The catalog entry a logged or billed model name stands for.
    ///
    /// Tried in order: the name or an alias as written (any case); the name
    /// without a cloud's decorations (`us.anthropic.…`, `…-v1:0`, a dated
    /// snapshot suffix such as `-20240620` or `-2024-08-06`); the same
    /// with punctuation and spaces ignored (`Claude3.5Sonnet`,
    /// `Claude 3.5 Sonnet`, `gpt 4o`). A marketplace provider
    /// (`aws-bedrock`, `azure-openai`, `vertex-ai`) without an entry of its
    /// own falls back to the one entry of that name under any provider.
    /// Whether the catalog prices any model of `provider`.
    pub fn has_provider(&self, provider: &str) -> bool {
        self.models.iter().any(|m| m.provider == provider)
    }

    pub fn resolve(&self, provider: &str, model: &str) -> Option<&ModelEntry> {
        let provider = normalize_name(provider);
        let index = self.resolve_in(&provider, model).or_else(|| {
            if !MARKETPLACES.contains(&provider.as_str()) {
                return None;
            }
            let mut found = self
                .providers()
                .filter(|p| *p != provider)
                .filter_map(|p| self.resolve_in(p, model));
            let first = found.next()?;
            // Ambiguous across providers: no guess.
            found.all(|i| i == first).then_some(first)
        })?;
        Some(&self.models[index])
    }

    fn providers(&self) -> impl Iterator<Item = &str> {
        let mut ps: Vec<&str> = self.names.keys().map(|(p, _)| p.as_str()).collect();
        ps.sort_unstable();
        ps.dedup();
        ps.into_iter()
    }

    fn resolve_in(&self, provider: &str, model: &str) -> Option<usize> {
        let lookup = |name: &str| {
            self.names
                .get(&(provider.to_string(), name.to_string()))
                .copied()
        };
        let plain = normalize_name(model);
        if let Some(i) = lookup(&plain) {
            return Some(i);
        }
        let bare = undecorated(&plain);
        if let Some(i) = lookup(&bare) {
            return Some(i);
        }
        let key = compact(&bare);
        self.compact
            .get(&(provider.to_string(), key))
            .copied()
            .flatten()
    }

    /// The prices of a canonical model in force on a day.
    pub fn prices_on(&self, provider: &str, model: &str, day: NaiveDate) -> Option<&PriceSet> {
        let entry = self.resolve(provider, model)?;
        entry.prices.iter().rev().find(|p| p.effective_from <= day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAT: &str = r#"{
      "currency": "USD",
      "models": [
        { "provider": "openai", "model": "gpt-4o", "aliases": ["gpt-4o-2024-08-06", "GPT-4o"],
          "tier": "general", "refreshed": "2024-10-10",
          "prices": [
            { "effective_from": "2024-05-13", "input": "5.00", "output": "15.00" },
            { "effective_from": "2024-10-01", "input": "2.50", "cached_input": "1.25", "output": "10.00" }
          ] }
      ]
    }"#;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn resolves_aliases_case_insensitively() {
        let c = Catalog::parse(CAT, "c.json").unwrap();
        assert_eq!(
            c.resolve("OpenAI", "gpt-4o-2024-08-06").unwrap().model,
            "gpt-4o"
        );
        assert_eq!(c.resolve("openai", "gpt-4O").unwrap().model, "gpt-4o");
        assert!(c.resolve("anthropic", "gpt-4o").is_none());
    }

    #[test]
    fn resolves_cloud_ids_and_display_names() {
        let text = r#"{"models":[
          {"provider":"anthropic","model":"claude-3-5-sonnet","aliases":["claude-3-5-sonnet-20241022"],
           "prices":[{"effective_from":"2024-01-01","input":"3","output":"15"}]},
          {"provider":"openai","model":"gpt-4o","prices":[{"effective_from":"2024-01-01","input":"5","output":"15"}]}
        ]}"#;
        let c = Catalog::parse(text, "c.json").unwrap();
        let m = |p: &str, n: &str| c.resolve(p, n).map(|e| e.model.as_str());
        assert_eq!(
            m("aws-bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(
            m(
                "aws-bedrock",
                "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
            ),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(
            m("aws-bedrock", "Claude3.5Sonnet"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(
            m("anthropic", "Claude 3.5 Sonnet"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(m("azure-openai", "gpt 4o"), Some("gpt-4o"));
        assert_eq!(m("openai", "gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(m("openai", "gpt-4o-mini"), None);
        assert_eq!(
            m("openai", "claude-3-5-sonnet"),
            None,
            "a direct provider does not borrow another's models"
        );
    }

    #[test]
    fn resolves_names_read_from_cloud_meters() {
        let text = r#"{"models":[
          {"provider":"vertex-ai","model":"gemini-2.5-flash","prices":[{"effective_from":"2025-06-17","input":"0.30","output":"2.50"}]},
          {"provider":"vertex-ai","model":"gemini-2.5-flash-lite","prices":[{"effective_from":"2025-06-17","input":"0.10","output":"0.40"}]},
          {"provider":"vertex-ai","model":"gemini-2.5-pro","aliases":["gemini-2.5-pro-preview-06-05"],
           "prices":[{"effective_from":"2025-06-17","input":"1.25","output":"10"}]},
          {"provider":"azure-openai","model":"gpt-5","prices":[{"effective_from":"2025-08-07","input":"1.25","output":"10"}]},
          {"provider":"aws-bedrock","model":"claude-3-5-haiku","prices":[{"effective_from":"2024-11-04","input":"0.80","output":"4"}]}
        ]}"#;
        let c = Catalog::parse(text, "c.json").unwrap();
        let m = |p: &str, n: &str| c.resolve(p, n).map(|e| e.model.as_str());
        // Vertex SKU descriptions, Azure meter names, Bedrock usage types.
        assert_eq!(m("vertex-ai", "Gemini 2.5 Flash"), Some("gemini-2.5-flash"));
        assert_eq!(
            m("vertex-ai", "Gemini 2.5 Flash Lite"),
            Some("gemini-2.5-flash-lite")
        );
        assert_eq!(
            m("vertex-ai", "gemini-2.5-pro-preview-06-05"),
            Some("gemini-2.5-pro")
        );
        assert_eq!(m("azure-openai", "GPT 5"), Some("gpt-5"));
        assert_eq!(m("azure-openai", "gpt-5-2025-08-07"), Some("gpt-5"));
        assert_eq!(m("aws-bedrock", "Claude3.5Haiku"), Some("claude-3-5-haiku"));
        assert_eq!(
            m("aws-bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            Some("claude-3-5-haiku")
        );
        // Unknown stays unknown: the reconciliation lists it, never guesses.
        assert_eq!(m("aws-bedrock", "Nova2.0Lite"), None);
        assert_eq!(m("vertex-ai", "Gemini 2.5"), None);
    }

    #[test]
    fn prices_follow_effective_dates() {
        let c = Catalog::parse(CAT, "c.json").unwrap();
        let p = c.prices_on("openai", "gpt-4o", day("2024-09-30")).unwrap();
        assert_eq!(p.input.to_string(), "5.00");
        // No cached price then: cached input is priced as input.
        assert_eq!(p.per_mtok(UsageType::CachedInput).to_string(), "5.00");
        let p = c.prices_on("openai", "gpt-4o", day("2024-10-01")).unwrap();
        assert_eq!(
            p.cost(UsageType::CachedInput, 2_000_000),
            Decimal::new(25, 1)
        );
        assert!(c.prices_on("openai", "gpt-4o", day("2024-01-01")).is_none());
    }

    #[test]
    fn float_prices_are_refused() {
        let text = CAT.replace("\"5.00\"", "5.00");
        let e = Catalog::parse(&text, "c.json").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "c.json:7:59: the catalog is not valid: invalid type: floating point `5.0`"
            ),
            "{e}"
        );
    }
}

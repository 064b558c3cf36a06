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
}

fn usd() -> String {
    "USD".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub refreshed: Option<NaiveDate>,
    pub prices: Vec<PriceSet>,
}

/// Prices per 1M tokens in force from `effective_from` until the next set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSet {
    pub effective_from: NaiveDate,
    pub input: Decimal,
    #[serde(default)]
    pub cached_input: Option<Decimal>,
    #[serde(default)]
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

    /// Exact cost of `tokens` tokens of a class.
    pub fn cost(&self, t: UsageType, tokens: u64) -> Decimal {
        Decimal::from(tokens) * self.per_mtok(t) / Decimal::from(1_000_000u64)
    }
}

/// Lower-cases and trims a model or provider name for matching.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Catalog {
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
                "the catalog shape is in DESIGN §3.3; prices are decimal strings per 1M tokens",
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
            }
            let provider = normalize_name(&m.provider);
            for name in std::iter::once(&m.model).chain(&m.aliases) {
                let key = (provider.clone(), normalize_name(name));
                if let Some(&j) = self.names.get(&key) {
                    if j != i {
                        return Err(bad(format!(
                            "the name `{name}` of provider `{provider}` stands for two models"
                        )));
                    }
                }
                self.names.insert(key, i);
            }
        }
        Ok(())
    }

    /// The catalog entry a logged or billed model name stands for.
    pub fn resolve(&self, provider: &str, model: &str) -> Option<&ModelEntry> {
        self.names
            .get(&(normalize_name(provider), normalize_name(model)))
            .map(|&i| &self.models[i])
    }

    /// Every (provider, name) the catalog answers to, with the canonical
    /// model name, for matching in a frame.
    pub fn name_table(&self) -> Vec<(String, String, String)> {
        let mut rows: Vec<_> = self
            .names
            .iter()
            .map(|((p, n), &i)| (p.clone(), n.clone(), self.models[i].model.clone()))
            .collect();
        rows.sort();
        rows
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

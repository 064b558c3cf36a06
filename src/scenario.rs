//! A what-if scenario (`compare --scenario S.toml`): the changes to a
//! month's usage and to the policy's terms that `compare` recomputes the
//! month under. Parsed and checked here; applied by `compute::whatif`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::config::{ChargebackDefaults, Policy, Team, line_col};
use crate::error::{Error, Location, Result};
use crate::money::Decimal;

/// A scenario file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario asks, in words (compare.json and compare.html).
    #[serde(default)]
    pub description: Option<String>,
    /// Traffic moved from one model to another.
    #[serde(default, rename = "move")]
    pub moves: Vec<toml::Spanned<Move>>,
    /// Prompt caching at a hit rate.
    #[serde(default)]
    pub cache: Vec<toml::Spanned<Cache>>,
    /// Planned usage: a hypothetical team's month, or more of a team's.
    #[serde(default)]
    pub plan: Vec<toml::Spanned<Plan>>,
    /// The organisation's default terms, key by key over the policy's.
    #[serde(default)]
    pub chargeback: Option<toml::Spanned<toml::Table>>,
    /// A team's terms, key by key over the policy's (a team the policy
    /// does not have is added).
    #[serde(default)]
    pub teams: BTreeMap<String, toml::Spanned<toml::Table>>,
}

/// `[[move]]`: a team's traffic (or one use case's) on `from` priced as
/// if it had gone to `to`, the token counts kept, cached shares kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Move {
    pub team: String,
    #[serde(default)]
    pub use_case: Option<String>,
    pub from: String,
    #[serde(default)]
    pub from_provider: Option<String>,
    pub to: String,
    #[serde(default)]
    pub to_provider: Option<String>,
}

/// `[[cache]]`: that share of uncached input priced as cached input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Every team when left out.
    #[serde(default)]
    pub team: Option<String>,
    /// Only this model's traffic (after any move) when given.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(deserialize_with = "crate::config::exact::decimal")]
    pub hit_rate: Decimal,
}

/// `[[plan]]`: monthly tokens of one model for a team, priced from the
/// catalog as in force on the last day of the period.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub team: String,
    pub model: String,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub use_case: Option<String>,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub cached_input_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub requests: u64,
}

/// The most tokens a plan line may state per class: a month of a large
/// fleet, and far inside what the catalog's prices can multiply exactly.
pub const MAX_PLANNED_TOKENS: u64 = 1_000_000_000_000_000;

impl Scenario {
    /// Parses and checks a scenario; `uri` names it in errors.
    pub fn parse(text: &str, uri: &str) -> Result<Scenario> {
        let s: Scenario = toml::from_str(text).map_err(|e| {
            let at = match e.span() {
                Some(span) => line_col(text, span.start, uri),
                None => Location::file(uri),
            };
            Error::policy(at, e.message().trim().to_string()).with_hint(
                "a scenario has `description`, [[move]], [[cache]], [[plan]], [chargeback] and [teams.<id>] (README › What-if)",
            )
        })?;
        for c in &s.cache {
            let rate = c.get_ref().hit_rate;
            if rate < Decimal::ZERO || rate > Decimal::ONE {
                return Err(Error::policy(
                    line_col(text, c.span().start, uri),
                    format!("`hit_rate` is `{rate}`, not between 0 and 1"),
                )
                .with_hint("a hit rate is a fraction: `\"0.30\"` is 30%"));
            }
        }
        for p in &s.plan {
            let plan = p.get_ref();
            let tokens = [
                plan.input_tokens,
                plan.cached_input_tokens,
                plan.cache_write_tokens,
                plan.output_tokens,
            ];
            if tokens.iter().any(|&t| t > MAX_PLANNED_TOKENS) {
                return Err(Error::policy(
                    line_col(text, p.span().start, uri),
                    format!(
                        "the plan for `{}` states more than {MAX_PLANNED_TOKENS} tokens of a class",
                        plan.team
                    ),
                ));
            }
            if tokens.iter().all(|&t| t == 0) {
                return Err(Error::policy(
                    line_col(text, p.span().start, uri),
                    format!("the plan for `{}` on `{}` has no tokens", plan.team, plan.model),
                )
                .with_hint("give `input_tokens`, `output_tokens` (and cached or cache-write tokens) for the month"));
            }
        }
        // Each table alone, so that a wrong key or value points into the
        // scenario, not into the merged policy.
        if let Some(t) = &s.chargeback {
            toml::Value::Table(t.get_ref().clone())
                .try_into::<ChargebackDefaults>()
                .map_err(|e| {
                    Error::policy(
                        line_col(text, t.span().start, uri),
                        format!("[chargeback]: {}", e.message().trim()),
                    )
                })?;
        }
        for (id, t) in &s.teams {
            toml::Value::Table(t.get_ref().clone())
                .try_into::<Team>()
                .map_err(|e| {
                    Error::policy(
                        line_col(text, t.span().start, uri),
                        format!("[teams.{id}]: {}", e.message().trim()),
                    )
                })?;
        }
        Ok(s)
    }

    /// The policy with this scenario's terms laid over it, key by key,
    /// and checked as a policy is. `policy_text` is the policy's source.
    pub fn policy(&self, policy_text: &str, policy_uri: &str, uri: &str) -> Result<Policy> {
        let mut doc: toml::Table = toml::from_str(policy_text).map_err(|e| {
            Error::policy(Location::file(policy_uri), e.message().trim().to_string())
        })?;
        if let Some(t) = &self.chargeback {
            let table = doc
                .entry("chargeback")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            merge(table, t.get_ref());
        }
        if !self.teams.is_empty() {
            let teams = doc
                .entry("teams")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(teams) = teams {
                for (id, t) in &self.teams {
                    let team = teams
                        .entry(id.clone())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    merge(team, t.get_ref());
                }
            }
        }
        let merged = toml::to_string(&doc).expect("a TOML table serialises");
        Policy::parse(&merged, policy_uri).map_err(|e| {
            let message = match &e {
                Error::Policy { message, .. } | Error::Input { message, .. } => message.clone(),
                other => other.to_string(),
            };
            let hint = e.hint().map_or_else(
                || "check the scenario's [chargeback] and [teams.<id>] keys: they follow the policy's rules".to_string(),
                str::to_string,
            );
            Error::policy(
                Location::file(uri),
                format!("the policy with this scenario's terms is not valid: {message}"),
            )
            .with_hint(hint)
        })
    }

    /// Every team the scenario names, for checking against the month.
    pub fn teams_named(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.teams.keys().map(String::as_str).collect();
        out.extend(self.moves.iter().map(|m| m.get_ref().team.as_str()));
        out.extend(
            self.cache
                .iter()
                .filter_map(|c| c.get_ref().team.as_deref()),
        );
        out.extend(self.plan.iter().map(|p| p.get_ref().team.as_str()));
        out
    }
}

/// `over`'s keys replace `base`'s (tables are replaced whole: a tier
/// table is one value).
fn merge(base: &mut toml::Value, over: &toml::Table) {
    if let toml::Value::Table(b) = base {
        for (k, v) in over {
            b.insert(k.clone(), v.clone());
        }
    } else {
        *base = toml::Value::Table(over.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[organization]
name = "Example Corp"
[sources]
requests = ["logs/*.csv"]
catalog = "catalog.json"
[chargeback]
model = "tiered"
platform_fee_rate = "0.15"
[teams.support]
model = "cost_plus"
markup = "0.20"
fixed_fee = "250.00"
"#;

    #[test]
    fn terms_are_laid_over_the_policy_key_by_key() {
        let s = Scenario::parse(
            r#"
[chargeback]
platform_fee_rate = "0.10"
[teams.support]
markup = "0.10"
[teams.voice]
model = "pass_through"
"#,
            "s.toml",
        )
        .unwrap();
        let p = s.policy(POLICY, "chargeback.toml", "s.toml").unwrap();
        let support = p.terms("support");
        assert_eq!(support.markup, Decimal::new(10, 2));
        assert_eq!(support.fixed_fee, Decimal::new(25000, 2), "kept");
        assert_eq!(p.terms("search").platform_fee_rate, Decimal::new(10, 2));
        assert!(p.terms("voice").in_policy);
    }

    #[test]
    fn errors_point_into_the_scenario() {
        let e = Scenario::parse("[teams.support]\nmarkp = \"0.1\"\n", "s.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml:1:1: [teams.support]: unknown field `markp`, expected one of `name`, `cost_center`, `model`, `markup`, `fixed_fee`, `platform_fee_rate`, `tier_mode`, `tiers`, `budget`, `alert_threshold`, `budget_basis`, `gl_account`, `outcome_rates`, `seats`, `seat_rate`"
        );
        let e = Scenario::parse("[[cache]]\nhit_rate = \"30\"\n", "s.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml:1:1: `hit_rate` is `30`, not between 0 and 1"
        );
        let e = Scenario::parse("[[plan]]\nteam = \"v\"\nmodel = \"m\"\n", "s.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml:1:1: the plan for `v` on `m` has no tokens"
        );
        let s = Scenario::parse("[teams.support]\nmarkup = \"20\"\n", "s.toml").unwrap();
        let e = s.policy(POLICY, "chargeback.toml", "s.toml").unwrap_err();
        assert_eq!(
            e.report(),
            "error: s.toml: the policy with this scenario's terms is not valid: `teams.support.markup` is `20`, more than 10 (1000%); rates are fractions: `\"0.20\"` is 20%\nhint: check the scenario's [chargeback] and [teams.<id>] keys: they follow the policy's rules\n"
        );
    }
}

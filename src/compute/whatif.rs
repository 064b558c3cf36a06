//! What-if: a scenario's usage changes (moves between models, caching,
//! planned usage) applied to the reconciled cells before attribution, so
//! that `compare` is the month's own `compute` under other usage; and the
//! per-team deltas the summary's what-if panel recomputes a choice from.
//!
//! Moved and planned usage is priced from the catalog: a moved cell's
//! share of its bill leaves the bill (the provider would not have charged
//! it) and its tokens, unchanged, are priced at the target model on the
//! same day. Caching takes `hit_rate` of a cell's uncached input tokens at
//! the difference between the input and cached-input price of the cell's
//! model that day, off whatever the cell cost (bill or catalog).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::catalog::{Catalog, ModelEntry, PriceSet, UsageType, normalize_name};
use crate::compute::attribute::{Attribution, TeamUsage};
use crate::compute::chargeback::{ChargeKind, TeamOutcomes, charge};
use crate::compute::invoice::TeamResult;
use crate::compute::pools;
use crate::compute::reconcile::Reconciled;
use crate::config::{
    ChargebackModel, Policy, Split as PoolSplit, TeamTerms, TierMode, line_col, model_name,
};
use crate::error::{Error, Location, Result};
use crate::load::ingest::UsageCell;
use crate::money::{Decimal, format_amount};
use crate::period::Period;
use crate::scenario::Scenario;
use crate::schema;

/// A scenario's usage changes, resolved against the catalog.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The scenario's URL, for errors found while applying it.
    pub uri: String,
    pub moves: Vec<MoveTo>,
    pub caches: Vec<CacheAt>,
    pub plans: Vec<Planned>,
}

#[derive(Debug, Clone)]
pub struct MoveTo {
    pub team: String,
    pub use_case: Option<String>,
    pub from: ModelRef,
    pub to: ModelEntry,
}

/// The model traffic moves away from: a catalog entry, or a name the
/// catalog does not know (matched on the logs' model as written).
#[derive(Debug, Clone)]
pub enum ModelRef {
    Catalog(ModelEntry),
    Unknown {
        provider: Option<String>,
        model: String,
    },
}

#[derive(Debug, Clone)]
pub struct CacheAt {
    pub team: Option<String>,
    pub model: Option<ModelEntry>,
    pub hit_rate: Decimal,
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub team: String,
    pub use_case: String,
    pub model: ModelEntry,
    pub tokens: [u64; 4],
    pub requests: u64,
}

/// What applying the changes did, per team, in words (`user_selections`).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub selections: BTreeMap<String, Vec<String>>,
}

/// The catalog entry `name` (of `provider`, when given) names; an error at
/// `at` when none does or when two providers' entries do.
pub fn find_model(
    catalog: &Catalog,
    name: &str,
    provider: Option<&str>,
    at: &Location,
) -> Result<ModelEntry> {
    let mut providers: Vec<&str> = catalog.models.iter().map(|m| m.provider.as_str()).collect();
    providers.sort_unstable();
    providers.dedup();
    if let Some(p) = provider {
        providers.retain(|q| normalize_name(q) == normalize_name(p));
    }
    let mut found: Vec<&ModelEntry> = providers
        .iter()
        .filter_map(|p| catalog.resolve(p, name))
        .collect();
    found.dedup_by(|a, b| a.provider == b.provider && a.model == b.model);
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let mut known: Vec<String> = catalog
                .models
                .iter()
                .map(|m| format!("{}/{}", m.provider, m.model))
                .collect();
            known.sort();
            Err(Error::policy(
                at.clone(),
                format!(
                    "model `{name}`{} is not in the catalog",
                    provider.map(|p| format!(" of `{p}`")).unwrap_or_default()
                ),
            )
            .with_hint(format!("the catalog has {}", known.join(", "))))
        }
        many => {
            let names: Vec<String> = many.iter().map(|m| format!("`{}`", m.provider)).collect();
            Err(Error::policy(
                at.clone(),
                format!(
                    "model `{name}` is in the catalog under {}",
                    names.join(" and ")
                ),
            )
            .with_hint("say which with `from_provider`, `to_provider` or `provider`"))
        }
    }
}

impl Changes {
    /// The scenario's usage changes, every model name resolved; `text`
    /// is the scenario's source, for error locations.
    pub fn resolve(s: &Scenario, catalog: &Catalog, text: &str, uri: &str) -> Result<Changes> {
        let at = |span: std::ops::Range<usize>| line_col(text, span.start, uri);
        let mut out = Changes {
            uri: uri.to_string(),
            ..Changes::default()
        };
        for m in &s.moves {
            let loc = at(m.span());
            let mv = m.get_ref();
            let from = match find_model(catalog, &mv.from, mv.from_provider.as_deref(), &loc) {
                Ok(e) => ModelRef::Catalog(e),
                // Traffic on a model the catalog does not price may move.
                Err(_) => ModelRef::Unknown {
                    provider: mv.from_provider.clone(),
                    model: mv.from.clone(),
                },
            };
            let to = find_model(catalog, &mv.to, mv.to_provider.as_deref(), &loc)?;
            out.moves.push(MoveTo {
                team: mv.team.clone(),
                use_case: mv.use_case.clone(),
                from,
                to,
            });
        }
        for c in &s.cache {
            let loc = at(c.span());
            let cache = c.get_ref();
            let model = match &cache.model {
                Some(name) => Some(find_model(catalog, name, None, &loc)?),
                None => None,
            };
            out.caches.push(CacheAt {
                team: cache.team.clone(),
                model,
                hit_rate: cache.hit_rate,
            });
        }
        for p in &s.plan {
            let loc = at(p.span());
            let plan = p.get_ref();
            out.plans.push(Planned {
                team: plan.team.clone(),
                use_case: plan
                    .use_case
                    .clone()
                    .unwrap_or_else(|| schema::request::NO_USE_CASE.to_string()),
                model: find_model(catalog, &plan.model, plan.provider.as_deref(), &loc)?,
                tokens: [
                    plan.input_tokens,
                    plan.cached_input_tokens,
                    plan.cache_write_tokens,
                    plan.output_tokens,
                ],
                requests: plan.requests,
            });
        }
        Ok(out)
    }
}

/// The prices of `entry` in force on `day`.
pub fn price_on(entry: &ModelEntry, day: NaiveDate) -> Option<&PriceSet> {
    entry.prices.iter().rev().find(|p| p.effective_from <= day)
}

/// Exact cost of token counts (indexed like [`UsageType::ALL`]).
pub fn cost_of(prices: &PriceSet, tokens: &[u64; 4]) -> Decimal {
    UsageType::ALL
        .iter()
        .map(|&t| prices.cost(t, tokens[t as usize]))
        .sum()
}

/// What caching every uncached input token would save at `prices`: the
/// saving per unit of hit rate.
pub fn cache_unit(prices: &PriceSet, input_tokens: u64) -> Decimal {
    prices.cost(UsageType::Input, input_tokens) - prices.cost(UsageType::CachedInput, input_tokens)
}

/// Whether a cell's traffic is the model `from` names.
fn is_model(catalog: &Catalog, cell: &UsageCell, from: &ModelRef) -> bool {
    match from {
        ModelRef::Catalog(e) => catalog
            .resolve(&cell.provider, &cell.model)
            .is_some_and(|c| c.provider == e.provider && c.model == e.model),
        ModelRef::Unknown { provider, model } => {
            normalize_name(&cell.model) == normalize_name(model)
                && provider
                    .as_ref()
                    .is_none_or(|p| normalize_name(p) == normalize_name(&cell.provider))
        }
    }
}

fn label(from: &ModelRef) -> &str {
    match from {
        ModelRef::Catalog(e) => &e.model,
        ModelRef::Unknown { model, .. } => model,
    }
}

/// Applies the changes to the month's cells and their reconciled costs:
/// the cells attribution then works on, and what each change did.
pub fn apply(
    changes: &Changes,
    cells: &[UsageCell],
    rec: &mut Reconciled,
    catalog: &Catalog,
    period: Period,
    scale: u32,
    currency: &str,
) -> Result<(Vec<UsageCell>, Applied)> {
    let mut out: Vec<UsageCell> = cells.to_vec();
    let mut repriced = vec![false; out.len()];
    let mut prices: BTreeMap<usize, PriceSet> = rec.cell_prices.iter().cloned().collect();
    let mut applied = Applied::default();
    let money = |d: Decimal| format!("{currency} {}", format_amount(d, scale));
    for mv in &changes.moves {
        let (mut requests, mut tokens) = (0u64, 0u64);
        let (mut before, mut after) = (Decimal::ZERO, Decimal::ZERO);
        for (i, c) in out.iter_mut().enumerate() {
            if c.team != mv.team
                || mv.use_case.as_ref().is_some_and(|u| *u != c.use_case)
                || !is_model(catalog, c, &mv.from)
            {
                continue;
            }
            let Some(p) = price_on(&mv.to, c.day) else {
                return Err(Error::policy(
                    Location::file(&changes.uri),
                    format!(
                        "`{}` has no catalog price in force on {}, a day `{}` moves traffic to it",
                        mv.to.model, c.day, mv.team
                    ),
                ));
            };
            let old = if rec.is_estimated(i, c) || repriced[i] {
                let old = rec.cell_estimated[i];
                rec.estimated_total -= old;
                old
            } else {
                let old = rec.cell_billed[i];
                rec.billed_total -= old;
                rec.cell_billed[i] = Decimal::ZERO;
                old
            };
            let new = cost_of(p, &c.tokens);
            rec.cell_estimated[i] = new;
            rec.estimated_total += new;
            rec.cell_failed[i] = cost_of(p, &c.error_tokens);
            prices.insert(i, p.clone());
            repriced[i] = true;
            c.provider.clone_from(&mv.to.provider);
            c.model.clone_from(&mv.to.model);
            requests += c.requests;
            tokens = tokens.saturating_add(c.total_tokens());
            before += old;
            after += new;
        }
        let what = mv
            .use_case
            .as_ref()
            .map(|u| format!(" (use case `{u}`)"))
            .unwrap_or_default();
        let line = if requests == 0 {
            format!(
                "move {} → {}{what}: no traffic of {} this month",
                label(&mv.from),
                mv.to.model,
                label(&mv.from)
            )
        } else {
            format!(
                "move {} → {}{what}: {}, {} tokens; {} as attributed → {} at catalog prices",
                label(&mv.from),
                mv.to.model,
                requests_text(requests),
                crate::compute::chargeback::thousands(tokens),
                money(before),
                money(after)
            )
        };
        applied
            .selections
            .entry(mv.team.clone())
            .or_default()
            .push(line);
    }
    for plan in &changes.plans {
        let day = period.end();
        let Some(p) = price_on(&plan.model, day) else {
            return Err(Error::policy(
                Location::file(&changes.uri),
                format!(
                    "`{}` has no catalog price in force on {day}, the day a plan is priced on",
                    plan.model.model
                ),
            ));
        };
        let cost = cost_of(p, &plan.tokens);
        let cell = UsageCell {
            provider: plan.model.provider.clone(),
            scope: String::new(),
            day,
            model: plan.model.model.clone(),
            team: plan.team.clone(),
            use_case: plan.use_case.clone(),
            tokens: plan.tokens,
            requests: plan.requests,
            errors: 0,
            error_tokens: [0; 4],
            // Planned counts come from no tokenizer and no provider.
            estimated_tokens: [0; 4],
        };
        let tokens = cell.total_tokens();
        out.push(cell);
        rec.cell_billed.push(Decimal::ZERO);
        rec.cell_estimated.push(cost);
        rec.cell_failed.push(Decimal::ZERO);
        rec.estimated_total += cost;
        prices.insert(out.len() - 1, p.clone());
        repriced.push(true);
        applied
            .selections
            .entry(plan.team.clone())
            .or_default()
            .push(format!(
                "planned {}: {} tokens{}, {} at catalog prices of {}",
                plan.model.model,
                crate::compute::chargeback::thousands(tokens),
                if plan.requests > 0 {
                    format!(" in {}", requests_text(plan.requests))
                } else {
                    String::new()
                },
                money(cost),
                p.effective_from
            ));
    }
    for cache in &changes.caches {
        let mut by_team: BTreeMap<String, (u64, Decimal, u64)> = BTreeMap::new();
        for (i, c) in out.iter().enumerate() {
            if cache.team.as_ref().is_some_and(|t| *t != c.team) {
                continue;
            }
            let entry = catalog.resolve(&c.provider, &c.model);
            if let Some(m) = &cache.model
                && !entry.is_some_and(|e| e.provider == m.provider && e.model == m.model)
            {
                continue;
            }
            let input = c.tokens_of(UsageType::Input);
            if input == 0 {
                continue;
            }
            let e = by_team.entry(c.team.clone()).or_default();
            let Some(p) = entry.and_then(|e| price_on(e, c.day)) else {
                e.2 += input;
                continue;
            };
            let saving = cache.hit_rate * cache_unit(p, input);
            if repriced[i] || rec.estimated_providers.contains(&c.provider) {
                rec.cell_estimated[i] -= saving;
                rec.estimated_total -= saving;
                rec.cell_failed[i] =
                    rec.cell_failed[i].min(rec.cell_estimated[i].max(Decimal::ZERO));
            } else {
                rec.cell_billed[i] -= saving;
                rec.billed_total -= saving;
                rec.cell_failed[i] = rec.cell_failed[i].min(rec.cell_billed[i].max(Decimal::ZERO));
            }
            e.0 = e.0.saturating_add(input);
            e.1 += saving;
        }
        let pct = (cache.hit_rate * Decimal::ONE_HUNDRED).normalize();
        let on = cache
            .model
            .as_ref()
            .map(|m| format!(" of {}", m.model))
            .unwrap_or_default();
        for (team, (input, saving, unpriced)) in by_team {
            let mut line = format!(
                "cache hit rate {pct}% on {} uncached input tokens{on}: {} less at catalog prices",
                crate::compute::chargeback::thousands(input),
                money(saving)
            );
            if unpriced > 0 {
                line.push_str(&format!(
                    " ({} tokens of models without a catalog price unchanged)",
                    crate::compute::chargeback::thousands(unpriced)
                ));
            }
            applied.selections.entry(team).or_default().push(line);
        }
    }
    rec.cell_repriced = repriced;
    rec.cell_prices = prices.into_iter().collect();
    // Lineage is not traced for a scenario: its bills are hypothetical.
    rec.lines.clear();
    rec.shares.clear();
    Ok((out, applied))
}

/// `1,058 requests`.
fn requests_text(n: u64) -> String {
    let word = if n == 1 { "request" } else { "requests" };
    format!("{} {word}", crate::compute::chargeback::thousands(n))
}

/// The summary panel's data: what it needs to recompute any one team's
/// month under a choice of move, terms and hit rate, exactly as `compare`
/// would (the contract, field by field: docs/whatif-data.md).
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    pub version: u32,
    pub currency: String,
    pub scale: u32,
    pub billed_exact: Decimal,
    pub estimated_exact: Decimal,
    pub parties: Vec<Party>,
    pub models: Vec<PanelModel>,
    pub pools: Vec<PanelPool>,
    pub teams: Vec<PanelTeam>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Party {
    pub team: Option<String>,
    pub exact: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct PanelModel {
    pub key: String,
    pub provider: String,
    pub model: String,
    pub tier: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PanelPool {
    pub name: String,
    pub amount: Decimal,
    pub teams: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PanelTeam {
    pub id: String,
    pub name: String,
    pub tokens: u64,
    pub current: Current,
    pub fixed: Decimal,
    pub cache: Split,
    pub from: Vec<From>,
    pub terms: BTreeMap<String, PanelTerms>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Current {
    pub usage_cost: Decimal,
    pub total: Decimal,
    pub model: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Split {
    pub billed: Decimal,
    pub estimated: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct From {
    pub key: String,
    pub label: String,
    pub to: BTreeMap<String, Delta>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta {
    pub moved_billed: Decimal,
    pub moved_estimated: Decimal,
    pub new: Decimal,
    pub cache_from_billed: Decimal,
    pub cache_from_estimated: Decimal,
    pub cache_to: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct PanelTerms {
    pub model: String,
    pub label: String,
    pub markup: Decimal,
    pub platform_fee_rate: Decimal,
    pub fixed_fee: Decimal,
    pub tier_mode: String,
    pub tiers: Vec<PanelTier>,
    pub value: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct PanelTier {
    pub name: String,
    pub up_to_mtokens: Option<u64>,
    pub markup: Decimal,
}

fn key(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}

/// Per team, the cells of each model it used: the deltas of moving them
/// to every other catalog model, and what caching would save.
pub fn team_moves(
    cells: &[UsageCell],
    rec: &Reconciled,
    catalog: &Catalog,
) -> BTreeMap<String, (Split, Vec<From>)> {
    let mut targets: Vec<&ModelEntry> = catalog.models.iter().collect();
    targets.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
    // Names resolve once per (provider, model), not once per cell.
    let mut resolved: std::collections::HashMap<(&str, &str), Option<&ModelEntry>> =
        std::collections::HashMap::new();
    // team → from key → (label, cell indices, its catalog entry)
    type Group<'c> = (String, Vec<usize>, Option<&'c ModelEntry>);
    let mut groups: BTreeMap<&str, BTreeMap<String, Group<'_>>> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        let entry = *resolved
            .entry((c.provider.as_str(), c.model.as_str()))
            .or_insert_with(|| catalog.resolve(&c.provider, &c.model));
        let (k, label) = match entry {
            Some(e) => (
                key(&e.provider, &e.model),
                format!("{} {}", e.provider, e.model),
            ),
            None => (
                key(&c.provider, &c.model),
                format!("{} {} (not in the catalog)", c.provider, c.model),
            ),
        };
        groups
            .entry(c.team.as_str())
            .or_default()
            .entry(k)
            .or_insert_with(|| (label, Vec::new(), entry))
            .1
            .push(i);
    }
    let billed = |i: usize, c: &UsageCell| !rec.is_estimated(i, c);
    let mut out = BTreeMap::new();
    for (team, froms) in groups {
        let mut cache = Split::default();
        let mut list = Vec::new();
        for (from_key, (label, idx, entry)) in froms {
            // The cells' own cost, and their caching saving at their model.
            let mut own = Delta::default();
            // Their tokens per day: a target's price is a price per day,
            // and the cost of a sum is the sum of the costs, exactly.
            let mut by_day: BTreeMap<NaiveDate, [u64; 4]> = BTreeMap::new();
            for &i in &idx {
                let c = &cells[i];
                let unit = entry
                    .and_then(|e| price_on(e, c.day))
                    .map_or(Decimal::ZERO, |p| {
                        cache_unit(p, c.tokens_of(UsageType::Input))
                    });
                if billed(i, c) {
                    own.moved_billed += rec.cell_billed[i];
                    own.cache_from_billed += unit;
                } else {
                    own.moved_estimated += rec.cell_estimated[i];
                    own.cache_from_estimated += unit;
                }
                let day = by_day.entry(c.day).or_default();
                for (sum, t) in day.iter_mut().zip(c.tokens) {
                    *sum = sum.saturating_add(t);
                }
            }
            cache.billed += own.cache_from_billed;
            cache.estimated += own.cache_from_estimated;
            let mut to = BTreeMap::new();
            'target: for t in &targets {
                let k = key(&t.provider, &t.model);
                if k == from_key {
                    continue;
                }
                let mut d = Delta {
                    new: Decimal::ZERO,
                    cache_to: Decimal::ZERO,
                    ..own.clone()
                };
                for (day, tokens) in &by_day {
                    let Some(p) = price_on(t, *day) else {
                        continue 'target;
                    };
                    d.new += cost_of(p, tokens);
                    d.cache_to += cache_unit(p, tokens[UsageType::Input as usize]);
                }
                to.insert(k, d);
            }
            list.push(From {
                key: from_key,
                label,
                to,
            });
        }
        out.insert(team.to_string(), (cache, list));
    }
    out
}

/// The catalog's models, as the panel offers them.
pub fn panel_models(catalog: &Catalog) -> Vec<PanelModel> {
    let mut out: Vec<PanelModel> = catalog
        .models
        .iter()
        .map(|m| PanelModel {
            key: key(&m.provider, &m.model),
            provider: m.provider.clone(),
            model: m.model.clone(),
            tier: m.tier.clone(),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// Everything the panel is built from: the month as run.
pub struct PanelInput<'a> {
    pub policy: &'a Policy,
    pub catalog: &'a Catalog,
    pub cells: &'a [UsageCell],
    pub rec: &'a Reconciled,
    pub attribution: &'a Attribution,
    pub teams: &'a [TeamResult<'a>],
    pub pools: &'a [pools::Spread],
    pub scale: u32,
}

/// The panel's data for the month as run.
pub fn panel(input: &PanelInput<'_>) -> Panel {
    let PanelInput {
        policy,
        catalog,
        cells,
        rec,
        attribution,
        teams,
        pools,
        scale,
    } = *input;
    let mut parties: Vec<Party> = attribution
        .teams
        .values()
        .map(|u| Party {
            team: Some(u.team.clone()),
            exact: u.exact,
        })
        .collect();
    parties.push(Party {
        team: None,
        exact: attribution.unattributed_exact,
    });
    let shared = policy.shared_costs.iter().map(toml::Spanned::get_ref);
    let mut proportional = Vec::new();
    let mut constant: BTreeMap<&str, Decimal> = BTreeMap::new();
    for (p, spread) in shared.zip(pools) {
        if p.split == PoolSplit::Proportional {
            if !spread.lines.is_empty() {
                proportional.push(PanelPool {
                    name: spread.name.clone(),
                    amount: spread.amount,
                    teams: spread.lines.keys().cloned().collect(),
                });
            }
        } else {
            for (team, line) in &spread.lines {
                *constant.entry(team.as_str()).or_default() += line.amount;
            }
        }
    }
    let mut moves = team_moves(cells, rec, catalog);
    let teams = teams
        .iter()
        .map(|t| {
            let id = t.usage.team.clone();
            let (cache, from) = moves.remove(&id).unwrap_or_default();
            let fixed = constant.get(id.as_str()).copied().unwrap_or_default()
                + t.charges.sum(ChargeKind::Adjustment);
            PanelTeam {
                name: t.terms.name.clone(),
                tokens: t.usage.tokens,
                current: Current {
                    usage_cost: t.usage.usage_cost,
                    total: t.charges.total,
                    model: model_name(t.terms.model).to_string(),
                },
                fixed,
                cache,
                from,
                terms: terms_offered(&t.terms, &t.outcomes, scale),
                id,
            }
        })
        .collect();
    Panel {
        version: 1,
        currency: policy.organization.currency.clone(),
        scale,
        billed_exact: rec.billed_total,
        estimated_exact: rec.estimated_total,
        parties,
        models: panel_models(catalog),
        pools: proportional,
        teams,
    }
}

/// The terms the panel offers a team: its own, and its own with each
/// other chargeback model (value-based only where it has rates): what
/// `[teams.<id>] model = "…"` in a scenario gives.
fn terms_offered(
    terms: &TeamTerms,
    outcomes: &TeamOutcomes,
    scale: u32,
) -> BTreeMap<String, PanelTerms> {
    let mut out = BTreeMap::new();
    let own = panel_terms(terms, outcomes, scale);
    out.insert(
        "current".to_string(),
        PanelTerms {
            label: format!("as in the policy: {}", own.label),
            ..own
        },
    );
    let mut models = vec![
        ChargebackModel::PassThrough,
        ChargebackModel::CostPlus,
        ChargebackModel::Tiered,
    ];
    if !terms.outcome_rates.is_empty() || terms.seat_rate.is_some() {
        models.push(ChargebackModel::ValueBased);
    }
    for m in models {
        let t = TeamTerms {
            model: m,
            ..terms.clone()
        };
        out.insert(model_name(m).to_string(), panel_terms(&t, outcomes, scale));
    }
    out
}

fn panel_terms(terms: &TeamTerms, outcomes: &TeamOutcomes, scale: u32) -> PanelTerms {
    let pct = |r: Decimal| format!("{}%", (r * Decimal::ONE_HUNDRED).normalize());
    let mode = match terms.tier_mode {
        TierMode::Volume => "volume",
        TierMode::Graduated => "graduated",
    };
    let label = match terms.model {
        ChargebackModel::PassThrough => "pass-through".to_string(),
        ChargebackModel::CostPlus => format!("cost-plus {}", pct(terms.markup)),
        ChargebackModel::Tiered => format!(
            "tiered ({mode}), platform fee {}",
            pct(terms.platform_fee_rate)
        ),
        ChargebackModel::ValueBased => "value-based".to_string(),
    };
    let value = if terms.model == ChargebackModel::ValueBased {
        let none = TeamUsage {
            team: terms.id.clone(),
            lines: Vec::new(),
            usage_cost: Decimal::ZERO,
            exact: Decimal::ZERO,
            tokens: 0,
            requests: 0,
        };
        let c = charge(&none, terms, outcomes, scale);
        c.sum(ChargeKind::OutcomeCharge) + c.sum(ChargeKind::SeatCharge)
    } else {
        Decimal::ZERO
    };
    PanelTerms {
        model: model_name(terms.model).to_string(),
        label,
        markup: terms.markup,
        platform_fee_rate: terms.platform_fee_rate,
        fixed_fee: terms.fixed_fee,
        tier_mode: mode.to_string(),
        tiers: terms
            .tiers
            .iter()
            .map(|t| PanelTier {
                name: t.name.clone(),
                up_to_mtokens: t.up_to_mtokens,
                markup: t.markup,
            })
            .collect(),
        value,
    }
}

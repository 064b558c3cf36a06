//! Insights on the month (`insights.json`, the summary's Insights section):
//! cost per business outcome, failed requests, estimated token counts,
//! conversations whose context keeps growing, and model sprawl. Each
//! insight carries its numbers and one sentence saying how they were
//! computed.
//!
//! Pure, like the rest of `compute`: it reads the usage cells, the exact
//! cost the reconciliation gave each, the catalog, the view model and the
//! conversations the load kept; no store, no clock. It charges nothing:
//! no invoice, ledger or total depends on it. Money is exact `Decimal`
//! until it is printed, rounded once per number, with the currency's
//! places (a cost per outcome with two more).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::RoundingStrategy;
use serde::Serialize;

use crate::catalog::{Catalog, ModelEntry, PriceSet, UsageType};
use crate::compute::attribute::TeamUsage;
use crate::compute::invoice::{MonthView, error_rate};
use crate::compute::reconcile::Reconciled;
use crate::load::ingest::{Conversations, Turn, UsageCell};
use crate::money::{Decimal, format_amount, round_line};

/// Requests a conversation needs before its growth means anything.
pub const MIN_TURNS: usize = 3;

/// The summarising interval of the context-growth saving: every N requests.
pub const SUMMARISE_EVERY: usize = 5;

/// How many growing conversations are listed by name (the costliest); the
/// totals count every one.
pub const LISTED_CONVERSATIONS: usize = 10;

/// What the insights are computed from.
pub struct InsightsInput<'a> {
    pub period: &'a str,
    pub cells: &'a [UsageCell],
    /// The reconciliation of `cells`: each cell's exact billed, estimated
    /// and failed cost (same index).
    pub reconciled: &'a Reconciled,
    pub catalog: &'a Catalog,
    /// The view model: the invoices' teams, names and failed requests.
    pub view: &'a MonthView,
    /// Each team's usage cost as invoiced.
    pub usage: &'a BTreeMap<String, TeamUsage>,
    /// (team, outcome) → outcomes of the request logs and of the outcome
    /// sources (both are added, as value-based charging adds them).
    pub outcomes: [&'a BTreeMap<(String, String), u64>; 2],
    /// Per (team, conversation id), its used requests in time order.
    pub conversations: &'a Conversations,
    /// Minor units of the currency.
    pub scale: u32,
}

/// `insights.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Insights {
    pub period: String,
    pub currency: String,
    pub cost_per_outcome: OutcomeCosts,
    pub failed_requests: FailedRequests,
    pub estimated_tokens: EstimatedTokens,
    pub context_growth: ContextGrowth,
    pub model_sprawl: ModelSprawl,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutcomeCosts {
    pub method: String,
    /// The one line shown when there is nothing to say.
    pub empty: Option<String>,
    /// Teams with outcomes, by id.
    pub teams: Vec<TeamOutcomeCost>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamOutcomeCost {
    pub team: String,
    pub team_name: String,
    pub usage_cost: String,
    /// Σ outcomes of every name.
    pub outcomes: u64,
    /// Outcomes by name.
    pub by_outcome: BTreeMap<String, u64>,
    /// `usage_cost / outcomes`, two places more than the currency's.
    pub cost_per_outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedRequests {
    pub method: String,
    pub empty: Option<String>,
    pub requests: u64,
    pub failed_requests: u64,
    pub error_rate: String,
    /// Σ over every cell of the exact part its failed requests carry.
    pub failed_cost: String,
    /// Failed requests left out by `failed_requests = "exclude"`.
    pub excluded: u64,
    /// Teams with requests, by invoice order.
    pub teams: Vec<TeamFailed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamFailed {
    pub team: String,
    pub team_name: String,
    pub requests: u64,
    pub failed_requests: u64,
    pub error_rate: String,
    pub failed_cost: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EstimatedTokens {
    pub method: String,
    pub empty: Option<String>,
    pub tokens: u64,
    pub estimated_tokens: u64,
    /// `estimated_tokens / tokens` in percent; none without tokens.
    pub share: Option<String>,
    /// The cost those tokens carry.
    pub cost: String,
    /// Teams with estimated tokens, by invoice order.
    pub teams: Vec<TeamEstimated>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamEstimated {
    pub team: String,
    pub team_name: String,
    pub tokens: u64,
    pub estimated_tokens: u64,
    pub share: Option<String>,
    pub cost: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContextGrowth {
    pub method: String,
    pub empty: Option<String>,
    /// N: the context is summarised after every N requests.
    pub summarise_every: usize,
    /// Conversations with a used request this month.
    pub conversations: u64,
    /// Of those, with at least [`MIN_TURNS`] requests.
    pub long_conversations: u64,
    /// Of those, whose input keeps growing.
    pub growing: u64,
    /// Growing conversations with a request the catalog cannot price on
    /// its day: counted in `growing`, left out of `cost` and `saving`.
    pub unpriced: u64,
    /// Requests of the growing conversations.
    pub requests: u64,
    /// Their cost at catalog prices.
    pub cost: String,
    /// What summarising every N requests would have saved of `cost`.
    pub saving: String,
    /// Per team with growing conversations, by id.
    pub teams: Vec<TeamGrowth>,
    /// The costliest growing conversations (at most
    /// [`LISTED_CONVERSATIONS`]), costliest first.
    pub largest: Vec<GrowingConversation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamGrowth {
    pub team: String,
    pub team_name: String,
    pub growing: u64,
    pub requests: u64,
    pub cost: String,
    pub saving: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrowingConversation {
    pub team: String,
    pub conversation_id: String,
    pub requests: u64,
    /// Input tokens (every class) of the first and the last request.
    pub first_input: u64,
    pub last_input: u64,
    pub first_request: String,
    pub last_request: String,
    pub cost: String,
    pub saving: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSprawl {
    /// How the per-model volumes were computed.
    pub method: String,
    /// How the per-tier saving was computed.
    pub saving_method: String,
    pub empty: Option<String>,
    /// Every model used, most costly first (ties by provider and model).
    pub models: Vec<ModelUse>,
    /// Per team and catalog tier: now, at the cheapest model of the tier,
    /// and the saving; by team, then tier.
    pub tiers: Vec<TierMove>,
    /// Σ `tiers[].saving`, as printed.
    pub saving: String,
    /// Traffic no tier comparison could be made for, and why.
    pub not_comparable: Vec<NotComparable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelUse {
    pub provider: String,
    pub model: String,
    pub tier: Option<String>,
    /// Teams using it, by id.
    pub teams: Vec<String>,
    pub requests: u64,
    pub tokens: u64,
    /// The cost the month gave its usage (billed or estimated).
    pub cost: String,
    /// The same tokens at catalog prices of each day; none when a day has
    /// no price.
    pub catalog_cost: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierMove {
    pub team: String,
    pub team_name: String,
    pub tier: String,
    /// `provider/model` of the team's traffic in the tier.
    pub models: Vec<String>,
    pub requests: u64,
    pub tokens: u64,
    /// The traffic at catalog prices of its own models.
    pub catalog_cost: String,
    /// The cheapest model of the tier for this traffic, as `provider/model`.
    pub cheapest: String,
    pub cheapest_cost: String,
    /// `catalog_cost − cheapest_cost` as printed, never below zero.
    pub saving: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotComparable {
    pub provider: String,
    pub model: String,
    /// The teams whose traffic it is, by id.
    pub teams: Vec<String>,
    pub reason: String,
}

/// The month's insights.
pub fn insights(input: &InsightsInput<'_>) -> Insights {
    let names: BTreeMap<&str, &str> = input
        .view
        .invoices
        .iter()
        .map(|i| (i.team.as_str(), i.team_name.as_str()))
        .collect();
    let name = |team: &str| names.get(team).copied().unwrap_or(team).to_string();
    let teams: Vec<(&str, &str)> = input
        .view
        .invoices
        .iter()
        .map(|i| (i.team.as_str(), i.team_name.as_str()))
        .collect();
    let cell_cost: Vec<Decimal> = input
        .reconciled
        .cell_billed
        .iter()
        .zip(&input.reconciled.cell_estimated)
        .map(|(b, e)| *b + *e)
        .collect();
    Insights {
        period: input.period.to_string(),
        currency: input.view.currency.clone(),
        cost_per_outcome: outcome_costs(input, &name),
        failed_requests: failed_requests(input),
        estimated_tokens: estimated_tokens(
            input.cells,
            &cell_cost,
            input.catalog,
            &teams,
            input.scale,
        ),
        context_growth: context_growth(
            input.conversations,
            input.catalog,
            SUMMARISE_EVERY,
            input.scale,
            &name,
        ),
        model_sprawl: model_sprawl(input.cells, &cell_cost, input.catalog, input.scale, &name),
    }
}

/// `total × part / whole` for `0 ≤ part ≤ whole`: multiplied first, for
/// every digit; divided first when the product would leave a `Decimal`
/// (a month of 10¹⁵ tokens in one cell), which it then cannot.
fn part_of(total: Decimal, part: Decimal, whole: Decimal) -> Decimal {
    if whole.is_zero() {
        return Decimal::ZERO;
    }
    total
        .checked_mul(part)
        .and_then(|p| p.checked_div(whole))
        .unwrap_or_else(|| total / whole * part)
}

/// `part / whole` in percent, one place, half away from zero (`"12.5%"`);
/// none when `whole` is zero.
fn percent(part: u64, whole: u64) -> Option<String> {
    (whole > 0).then(|| {
        let r = Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole);
        let r = r.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
        format!("{}%", r.normalize())
    })
}

fn outcome_costs(input: &InsightsInput<'_>, name: &dyn Fn(&str) -> String) -> OutcomeCosts {
    let mut by_team: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for ((team, outcome), n) in input.outcomes.iter().flat_map(|m| m.iter()) {
        let c = by_team
            .entry(team.as_str())
            .or_default()
            .entry(outcome.clone())
            .or_default();
        *c = c.saturating_add(*n);
    }
    let scale = input.scale;
    let teams: Vec<TeamOutcomeCost> = by_team
        .into_iter()
        .filter_map(|(team, by_outcome)| {
            let outcomes = by_outcome.values().fold(0u64, |a, n| a.saturating_add(*n));
            if outcomes == 0 {
                return None;
            }
            let cost = input
                .usage
                .get(team)
                .map_or(Decimal::ZERO, |u| u.usage_cost);
            Some(TeamOutcomeCost {
                team: team.to_string(),
                team_name: name(team),
                usage_cost: format_amount(cost, scale),
                outcomes,
                by_outcome,
                cost_per_outcome: cost_per(cost, outcomes, scale),
            })
        })
        .collect();
    OutcomeCosts {
        method: "The team's usage cost as invoiced divided by every outcome it counted that month, of any name, from the request logs' `outcome` column and the `[sources] outcomes` files together, exactly, rounded once to two places more than the currency's.".into(),
        empty: teams
            .is_empty()
            .then(|| "no request and no outcome source counted a business outcome this month".into()),
        teams,
    }
}

/// `cost / n`, rounded once to the currency's places plus two.
fn cost_per(cost: Decimal, n: u64, scale: u32) -> String {
    let per = if n == 0 {
        Decimal::ZERO
    } else {
        cost / Decimal::from(n)
    };
    format_amount(round_line(per, scale + 2), scale + 2)
}

fn failed_requests(input: &InsightsInput<'_>) -> FailedRequests {
    let scale = input.scale;
    let teams: Vec<TeamFailed> = input
        .view
        .invoices
        .iter()
        .filter(|i| i.requests > 0)
        .map(|i| TeamFailed {
            team: i.team.clone(),
            team_name: i.team_name.clone(),
            requests: i.requests,
            failed_requests: i.failed_requests,
            error_rate: i.error_rate.clone().unwrap_or_else(|| "0%".into()),
            failed_cost: i
                .failed_cost
                .clone()
                .unwrap_or_else(|| format_amount(Decimal::ZERO, scale)),
        })
        .collect();
    let requests = input.cells.iter().map(|c| c.requests).sum();
    let failed = input.cells.iter().map(|c| c.errors).sum();
    let failed_cost: Decimal = input.reconciled.cell_failed.iter().copied().sum();
    let excluded = input.view.inputs.failed_excluded;
    let empty = match (failed, excluded) {
        (0, 0) => Some("no request failed this month".to_string()),
        (0, n) => Some(format!(
            "{} excluded by the policy (`failed_requests = \"exclude\"`): they cost no team anything",
            crate::text::count(n, "failed request was", "failed requests were")
        )),
        _ => None,
    };
    FailedRequests {
        method: "A failed request is one with status `error`; a team's error rate is its failed requests divided by all its requests, and their cost is, as on its invoice, the exact part of each billed line their tokens carry (weighed as the line was split) or their catalog price, rounded once.".into(),
        empty,
        requests,
        failed_requests: failed,
        error_rate: error_rate(failed, requests).unwrap_or_else(|| "0%".into()),
        failed_cost: format_amount(failed_cost, scale),
        excluded,
        teams,
    }
}

/// The part of a cell's cost its estimated tokens carry: the cost × their
/// catalog cost / the catalog cost of all its tokens (prices of the cell's
/// model and day, so a token class weighs what it is priced at), or × their
/// share of the tokens when the catalog has no price that day.
fn estimated_cost(c: &UsageCell, cost: Decimal, catalog: &Catalog) -> Decimal {
    if c.total_estimated() == 0 {
        return Decimal::ZERO;
    }
    let (part, all) = match catalog.prices_on(&c.provider, &c.model, c.day) {
        Some(p) if !cost_at(p, &c.tokens).is_zero() => {
            (cost_at(p, &c.estimated_tokens), cost_at(p, &c.tokens))
        }
        _ => (
            Decimal::from(c.total_estimated()),
            Decimal::from(c.total_tokens()),
        ),
    };
    if all.is_zero() {
        return Decimal::ZERO;
    }
    part_of(cost, part, all).min(cost)
}

/// `teams`: (id, name) in invoice order.
fn estimated_tokens(
    cells: &[UsageCell],
    cell_cost: &[Decimal],
    catalog: &Catalog,
    teams: &[(&str, &str)],
    scale: u32,
) -> EstimatedTokens {
    // team → (tokens, estimated, cost of the estimated)
    let mut per: BTreeMap<&str, (u64, u64, Decimal)> = BTreeMap::new();
    for (c, cost) in cells.iter().zip(cell_cost) {
        let e = per.entry(c.team.as_str()).or_default();
        e.0 = e.0.saturating_add(c.total_tokens());
        e.1 = e.1.saturating_add(c.total_estimated());
        e.2 += estimated_cost(c, *cost, catalog);
    }
    let (tokens, estimated, cost) = per
        .values()
        .fold((0u64, 0u64, Decimal::ZERO), |(t, e, c), v| {
            (t.saturating_add(v.0), e.saturating_add(v.1), c + v.2)
        });
    let teams = teams
        .iter()
        .filter_map(|&(team, team_name)| {
            let (t, e, c) = per.get(team).copied()?;
            (e > 0).then(|| TeamEstimated {
                team: team.to_string(),
                team_name: team_name.to_string(),
                tokens: t,
                estimated_tokens: e,
                share: percent(e, t),
                cost: format_amount(c, scale),
            })
        })
        .collect();
    EstimatedTokens {
        method: "Tokens of requests marked `tokens_estimated` (counted by a tokenizer, not reported by the provider) divided by all tokens, per team and in all; the cost they carry is, per usage cell (provider, scope, day, model, team and use case), the cell's exact cost times the catalog cost of its estimated tokens divided by the catalog cost of all its tokens (their share of the tokens where the catalog has no price that day), summed and rounded once.".into(),
        empty: (estimated == 0)
            .then(|| "no request's token counts are marked estimated (`tokens_estimated`)".into()),
        tokens,
        estimated_tokens: estimated,
        share: percent(estimated, tokens),
        cost: format_amount(cost, scale),
        teams,
    }
}

/// The catalog prices of a model in force on a day.
fn price_on(entry: &ModelEntry, day: NaiveDate) -> Option<&PriceSet> {
    entry.prices.iter().rev().find(|p| p.effective_from <= day)
}

/// Tokens at a price set: Σ over the classes.
fn cost_at(p: &PriceSet, tokens: &[u64; 4]) -> Decimal {
    UsageType::ALL
        .iter()
        .map(|&t| p.cost(t, tokens[t as usize]))
        .sum()
}

/// Whether a conversation's input keeps growing: at least [`MIN_TURNS`]
/// requests, the input (every class) never smaller than the one before,
/// and the last larger than the first.
pub fn grows(inputs: &[u64]) -> bool {
    inputs.len() >= MIN_TURNS
        && inputs.windows(2).all(|w| w[0] <= w[1])
        && inputs.last() > inputs.first()
}

/// What summarising the context after every `every` requests saves of a
/// growing conversation, given each request's input tokens (every class)
/// and what that input cost. The model: the requests come in blocks of
/// `every`; the first block is as it was; the first request of each
/// later block sends only the first request's input (the summary is
/// assumed that size), and each later one of the block that plus the
/// growth since the block began. The tokens removed are priced at the
/// request's own input prices (its mix of uncached, cached and cache-write
/// tokens kept); the summaries' own cost is not counted.
pub fn summarised_saving(turns: &[(u64, Decimal)], every: usize) -> Decimal {
    let Some(&(first, _)) = turns.first() else {
        return Decimal::ZERO;
    };
    let every = every.max(1);
    let mut saving = Decimal::ZERO;
    for (j, &(input, cost)) in turns.iter().enumerate() {
        let start = turns[j / every * every].0;
        let kept = first.saturating_add(input.saturating_sub(start)).min(input);
        if input > 0 && kept < input {
            saving += part_of(cost, Decimal::from(input - kept), Decimal::from(input));
        }
    }
    saving
}

fn context_growth(
    all: &Conversations,
    catalog: &Catalog,
    every: usize,
    scale: u32,
    name: &dyn Fn(&str) -> String,
) -> ContextGrowth {
    let money = |d: Decimal| format_amount(d, scale);
    let conversations = &all.turns;
    let long = conversations
        .values()
        .filter(|t| t.len() >= MIN_TURNS)
        .count() as u64;
    // (cost, saving, team, id, turns) of the priced growing conversations.
    let mut priced: Vec<(Decimal, Decimal, &str, &str, &[Turn])> = Vec::new();
    let mut unpriced = 0u64;
    let mut requests = 0u64;
    let mut per_team: BTreeMap<&str, (u64, u64, Decimal, Decimal)> = BTreeMap::new();
    for ((team, id), turns) in conversations {
        let inputs: Vec<u64> = turns.iter().map(Turn::input_tokens).collect();
        if !grows(&inputs) {
            continue;
        }
        requests += turns.len() as u64;
        let e = per_team.entry(team.as_str()).or_default();
        e.0 += 1;
        e.1 += turns.len() as u64;
        let prices: Option<Vec<&PriceSet>> = turns
            .iter()
            .map(|t| {
                let (provider, model) = all.model_of(t);
                catalog.prices_on(provider, model, t.day())
            })
            .collect();
        let Some(prices) = prices else {
            unpriced += 1;
            continue;
        };
        let cost: Decimal = turns
            .iter()
            .zip(&prices)
            .map(|(t, p)| cost_at(p, &t.tokens()))
            .sum();
        let inputs: Vec<(u64, Decimal)> = turns
            .iter()
            .zip(&prices)
            .map(|(t, p)| {
                let mut input = t.tokens();
                input[UsageType::Output as usize] = 0;
                (t.input_tokens(), cost_at(p, &input))
            })
            .collect();
        let saving = summarised_saving(&inputs, every);
        e.2 += cost;
        e.3 += saving;
        priced.push((cost, saving, team, id, turns));
    }
    let growing = per_team.values().map(|v| v.0).sum::<u64>();
    let cost: Decimal = priced.iter().map(|p| p.0).sum();
    let saving: Decimal = priced.iter().map(|p| p.1).sum();
    priced.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (a.2, a.3).cmp(&(b.2, b.3))));
    let largest = priced
        .iter()
        .take(LISTED_CONVERSATIONS)
        .map(|(cost, saving, team, id, turns)| GrowingConversation {
            team: (*team).to_string(),
            conversation_id: (*id).to_string(),
            requests: turns.len() as u64,
            first_input: turns.first().map_or(0, Turn::input_tokens),
            last_input: turns.last().map_or(0, Turn::input_tokens),
            first_request: turns
                .first()
                .map(|t| t.request_id.to_string())
                .unwrap_or_default(),
            last_request: turns
                .last()
                .map(|t| t.request_id.to_string())
                .unwrap_or_default(),
            cost: money(*cost),
            saving: money(*saving),
        })
        .collect();
    let empty = if conversations.is_empty() {
        Some("no request of the month carries a `conversation_id`".to_string())
    } else if growing == 0 {
        Some(format!(
            "no conversation of {MIN_TURNS} or more requests has an input that keeps growing ({} with a `conversation_id`, {long} of them with {MIN_TURNS} or more requests)",
            crate::text::count(conversations.len() as u64, "conversation", "conversations")
        ))
    } else {
        None
    };
    ContextGrowth {
        method: format!(
            "Conversations are the requests of one team sharing a `conversation_id`, in time order; one grows when it has at least {MIN_TURNS} requests whose input tokens (uncached, cached and cache-write) never fall from one request to the next and end higher than they start; its cost is every request at the catalog prices of its model and day, and the saving assumes the context is summarised after every {every} requests, so that the first request after a summary sends only as many input tokens as the conversation's first request and each later one that plus the growth since the summary, the tokens removed priced at that request's own input prices, the summaries' own cost not counted."
        ),
        empty,
        summarise_every: every,
        conversations: conversations.len() as u64,
        long_conversations: long,
        growing,
        unpriced,
        requests,
        cost: money(cost),
        saving: money(saving),
        teams: per_team
            .into_iter()
            .map(|(team, (g, r, c, s))| TeamGrowth {
                team: team.to_string(),
                team_name: name(team),
                growing: g,
                requests: r,
                cost: money(c),
                saving: money(s),
            })
            .collect(),
        largest,
    }
}

fn model_sprawl(
    cells: &[UsageCell],
    cell_cost: &[Decimal],
    catalog: &Catalog,
    scale: u32,
    name: &dyn Fn(&str) -> String,
) -> ModelSprawl {
    let money = |d: Decimal| format_amount(d, scale);
    struct Use<'c> {
        teams: BTreeSet<&'c str>,
        requests: u64,
        tokens: u64,
        cost: Decimal,
        catalog_cost: Option<Decimal>,
    }
    let mut uses: BTreeMap<(&str, &str), Use<'_>> = BTreeMap::new();
    /// A team's traffic in one tier.
    #[derive(Default)]
    struct Traffic<'c> {
        models: BTreeSet<(&'c str, &'c str)>,
        requests: u64,
        tokens: u64,
        /// At its own models' prices of each day.
        catalog_cost: Decimal,
        /// Tokens per class by day: what a candidate model is priced on.
        by_day: BTreeMap<NaiveDate, [u64; 4]>,
    }
    let mut traffic: BTreeMap<(&str, String), Traffic<'_>> = BTreeMap::new();
    // (provider, model) → (teams, reason) of usage no tier comparison takes.
    let mut apart: BTreeMap<(&str, &str), (BTreeSet<&str>, String)> = BTreeMap::new();
    for (c, cost) in cells.iter().zip(cell_cost) {
        let entry = catalog.resolve(&c.provider, &c.model);
        let own = entry.and_then(|e| price_on(e, c.day));
        let u = uses
            .entry((c.provider.as_str(), c.model.as_str()))
            .or_insert_with(|| Use {
                teams: BTreeSet::new(),
                requests: 0,
                tokens: 0,
                cost: Decimal::ZERO,
                catalog_cost: Some(Decimal::ZERO),
            });
        u.teams.insert(&c.team);
        u.requests += c.requests;
        u.tokens = u.tokens.saturating_add(c.total_tokens());
        u.cost += *cost;
        u.catalog_cost = match (u.catalog_cost, own) {
            (Some(sum), Some(p)) => Some(sum + cost_at(p, &c.tokens)),
            _ => None,
        };
        let key = (c.provider.as_str(), c.model.as_str());
        let why = match (entry, entry.and_then(|e| e.tier.as_deref()), own) {
            (None, _, _) => Some("not in the catalog".to_string()),
            (Some(_), None, _) => Some("the catalog gives it no tier".to_string()),
            (Some(_), Some(_), None) => Some(format!(
                "no catalog price in force on {}: that usage is left out of the tier comparison",
                c.day
            )),
            (Some(_), Some(_), Some(_)) => None,
        };
        if let Some(why) = why {
            apart
                .entry(key)
                .or_insert_with(|| (BTreeSet::new(), why))
                .0
                .insert(&c.team);
            continue;
        }
        let (Some(tier), Some(own)) = (entry.and_then(|e| e.tier.clone()), own) else {
            continue;
        };
        let t = traffic.entry((c.team.as_str(), tier)).or_default();
        t.models.insert(key);
        t.requests += c.requests;
        t.tokens = t.tokens.saturating_add(c.total_tokens());
        t.catalog_cost += cost_at(own, &c.tokens);
        let day = t.by_day.entry(c.day).or_default();
        for (d, n) in day.iter_mut().zip(c.tokens) {
            *d = d.saturating_add(n);
        }
    }
    let mut models: Vec<(Decimal, ModelUse)> = uses
        .into_iter()
        .map(|((provider, model), u)| {
            let tier = catalog
                .resolve(provider, model)
                .and_then(|e| e.tier.clone());
            (
                u.cost,
                ModelUse {
                    provider: provider.to_string(),
                    model: model.to_string(),
                    tier,
                    teams: u.teams.iter().map(ToString::to_string).collect(),
                    requests: u.requests,
                    tokens: u.tokens,
                    cost: money(u.cost),
                    catalog_cost: u.catalog_cost.map(money),
                },
            )
        })
        .collect();
    models.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| (&a.1.provider, &a.1.model).cmp(&(&b.1.provider, &b.1.model)))
    });
    let mut saving_total = Decimal::ZERO;
    let mut tiers = Vec::new();
    for ((team, tier), t) in &traffic {
        let now = t.catalog_cost;
        // Every model of the tier that has a price on each day of the
        // traffic, at that traffic; the cheapest, ties by provider, model.
        let cheapest = catalog
            .models
            .iter()
            .filter(|m| m.tier.as_deref() == Some(tier.as_str()))
            .filter_map(|m| {
                let cost: Option<Decimal> = t
                    .by_day
                    .iter()
                    .map(|(day, tokens)| price_on(m, *day).map(|p| cost_at(p, tokens)))
                    .sum();
                cost.map(|c| (c, m.provider.as_str(), m.model.as_str()))
            })
            .min();
        let Some((best, provider, model)) = cheapest else {
            continue;
        };
        // The difference of the two amounts as printed, so that the three
        // columns add up for a reader; within a cent of the exact one.
        let (now, best) = (round_line(now, scale), round_line(best, scale));
        let saving = (now - best).max(Decimal::ZERO);
        saving_total += saving;
        tiers.push(TierMove {
            team: (*team).to_string(),
            team_name: name(team),
            tier: tier.clone(),
            models: t.models.iter().map(|(p, m)| format!("{p}/{m}")).collect(),
            requests: t.requests,
            tokens: t.tokens,
            catalog_cost: money(now),
            cheapest: format!("{provider}/{model}"),
            cheapest_cost: money(best),
            saving: money(saving),
        });
    }
    ModelSprawl {
        method: "Per model as the logs name it (provider and catalog model): the teams that used it, their requests and tokens, the cost the month gave that usage (billed, or estimated where no bill was), and the same tokens at the catalog prices of each day.".into(),
        saving_method: "Per team and catalog tier: the team's tokens of that tier at the catalog prices of its own models on each day, against the same tokens, class for class (so the cached and cache-write shares are kept), at the catalog model of that tier, under any provider, that prices them lowest on those days, the saving being the difference of the two rounded amounts and never below zero.".into(),
        empty: models.is_empty().then(|| "no usage this month".into()),
        models: models.into_iter().map(|(_, m)| m).collect(),
        tiers,
        saving: money(saving_total),
        not_comparable: apart
            .into_iter()
            .map(|((provider, model), (teams, reason))| NotComparable {
                provider: provider.to_string(),
                model: model.to_string(),
                teams: teams.iter().map(ToString::to_string).collect(),
                reason,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const CATALOG: &str = r#"{"models":[
      {"provider":"openai","model":"gpt-4o","tier":"general",
       "prices":[{"effective_from":"2025-01-01","input":"2.50","cached_input":"1.25","output":"10"}]},
      {"provider":"anthropic","model":"claude-sonnet","tier":"general",
       "prices":[{"effective_from":"2025-01-01","input":"3","cached_input":"0.30","cache_write":"3.75","output":"15"}]},
      {"provider":"openai","model":"gpt-4o-mini","tier":"throughput",
       "prices":[{"effective_from":"2025-01-01","input":"0.15","cached_input":"0.075","output":"0.60"}]},
      {"provider":"mistral-ai","model":"mistral-small",
       "prices":[{"effective_from":"2025-01-01","input":"1","output":"1"}]},
      {"provider":"openai","model":"o-late","tier":"general",
       "prices":[{"effective_from":"2025-01-20","input":"0.01","output":"0.01"}]}
    ]}"#;

    fn catalog() -> Catalog {
        Catalog::parse(CATALOG, "c.json").unwrap()
    }

    fn cell(team: &str, provider: &str, model: &str, tokens: [u64; 4]) -> UsageCell {
        UsageCell {
            provider: provider.into(),
            scope: String::new(),
            day: day("2025-01-05"),
            model: model.into(),
            team: team.into(),
            use_case: "general".into(),
            tokens,
            requests: 10,
            errors: 0,
            error_tokens: [0; 4],
            estimated_tokens: [0; 4],
        }
    }

    fn no_name(team: &str) -> String {
        team.to_string()
    }

    #[test]
    fn a_part_of_a_huge_cost_does_not_overflow() {
        let huge = Decimal::from(10u64.pow(15));
        let tokens = Decimal::from(10u64.pow(15));
        assert_eq!(
            part_of(huge, tokens / Decimal::TWO, tokens),
            huge / Decimal::TWO
        );
        assert_eq!(part_of(d("3.60"), d("1.75"), d("3.50")), d("1.80"));
        assert_eq!(part_of(d("3.60"), d("1"), Decimal::ZERO), Decimal::ZERO);
    }

    #[test]
    fn percentages_and_costs_per_outcome_round_once() {
        assert_eq!(percent(1, 8).as_deref(), Some("12.5%"));
        assert_eq!(percent(1, 3).as_deref(), Some("33.3%"));
        assert_eq!(percent(2, 3).as_deref(), Some("66.7%"));
        assert_eq!(percent(0, 3).as_deref(), Some("0%"));
        assert_eq!(percent(1, 0), None);
        // 6.65 over 12 outcomes = 0.554166…, four places for a currency of two.
        assert_eq!(cost_per(d("6.65"), 12, 2), "0.5542");
        assert_eq!(cost_per(d("10.00"), 4, 2), "2.5000");
        assert_eq!(cost_per(d("1000"), 3, 0), "333.33");
    }

    #[test]
    fn growth_needs_three_requests_never_falling_and_ending_higher() {
        assert!(grows(&[100, 200, 300]));
        assert!(grows(&[100, 100, 101]));
        assert!(!grows(&[100, 200]), "two requests");
        assert!(!grows(&[100, 100, 100]), "flat");
        assert!(!grows(&[100, 300, 200, 400]), "falls once");
        assert!(!grows(&[]));
    }

    #[test]
    fn summarising_every_n_restarts_each_block_at_the_first_input() {
        // Inputs 1M … 7M at 1 per token: the first block of 5 is as it was;
        // request 6 starts a block and sends 1M (5M removed), request 7
        // sends 1M + its growth of 1M since request 6 (5M removed).
        let one = |m: u64| (m * 1_000_000, Decimal::from(m));
        let turns: Vec<(u64, Decimal)> = (1..=7).map(one).collect();
        assert_eq!(summarised_saving(&turns, 5), d("10"));
        // Every 3: requests 4, 5, 6 send 1M, 2M, 3M (3M removed from each),
        // request 7 sends 1M (6M removed).
        assert_eq!(summarised_saving(&turns, 3), d("15"));
        // A conversation shorter than a block saves nothing.
        assert_eq!(summarised_saving(&turns[..5], 5), Decimal::ZERO);
        assert_eq!(summarised_saving(&[], 5), Decimal::ZERO);
    }

    /// A gpt-4o request (model 0 of [`conversations`]) on 5 January 2025,
    /// `minute` past midnight.
    fn turn(request: &str, minute: i64, uncached: u32, cached: u32, output: u32) -> Turn {
        let day = (day("2025-01-05") - day("1970-01-01")).num_days();
        Turn {
            micros: (day * 1440 + minute) * 60_000_000,
            request_id: request.into(),
            model: 0,
            tokens: [uncached, cached, 0, output],
            error: false,
        }
    }

    fn conversations(turns: Vec<((&str, &str), Vec<Turn>)>) -> Conversations {
        Conversations {
            models: ["gpt-4o", "o-late"]
                .map(|m| ("openai".to_string(), m.to_string()))
                .to_vec(),
            turns: turns
                .into_iter()
                .map(|((team, id), t)| ((team.to_string(), id.to_string()), t))
                .collect(),
        }
    }

    #[test]
    fn context_growth_by_hand() {
        const M: u32 = 1_000_000;
        // Request k: 1M uncached + (k−1)M cached input, 0.1M output. At
        // gpt-4o's 2.50 / 1.25 / 10 per 1M: input 2.50 + 1.25 (k−1), output
        // 1.00, so the seven cost 3.50 + 4.75 + … + 11.00 = 50.75. Every
        // 5: request 6 keeps 1M of 6M (input 8.75 × 5/6 saved), request 7
        // keeps 2M of 7M (input 10.00 × 5/7 saved): 14.4345238…
        let grows: Vec<Turn> = (1..=7u32)
            .map(|k| turn(&format!("r{k}"), i64::from(k), M, (k - 1) * M, M / 10))
            .collect();
        let falls = vec![
            turn("f1", 1, 300, 0, 1),
            turn("f2", 2, 100, 0, 1),
            turn("f3", 3, 400, 0, 1),
        ];
        let short = vec![turn("s1", 1, 100, 0, 1), turn("s2", 2, 200, 0, 1)];
        // Growing, but its last request's model has no price on its day.
        let mut late = vec![turn("u1", 1, 100, 0, 1), turn("u2", 2, 200, 0, 1)];
        late.push(Turn {
            model: 1,
            ..turn("u3", 3, 300, 0, 1)
        });
        let all = conversations(vec![
            (("support", "c-grows"), grows),
            (("support", "c-falls"), falls.clone()),
            (("search", "c-short"), short),
            (("search", "c-unpriced"), late),
        ]);
        let g = context_growth(&all, &catalog(), 5, 2, &no_name);
        assert_eq!(g.empty, None);
        assert_eq!(
            (g.conversations, g.long_conversations, g.growing, g.unpriced),
            (4, 3, 2, 1)
        );
        assert_eq!(g.requests, 10);
        assert_eq!((g.cost.as_str(), g.saving.as_str()), ("50.75", "14.43"));
        assert_eq!(g.largest.len(), 1);
        let c = &g.largest[0];
        assert_eq!(
            (
                c.conversation_id.as_str(),
                c.requests,
                c.first_input,
                c.last_input
            ),
            ("c-grows", 7, 1_000_000, 7_000_000)
        );
        assert_eq!(
            (c.first_request.as_str(), c.last_request.as_str()),
            ("r1", "r7")
        );
        let teams: Vec<(&str, u64, &str)> = g
            .teams
            .iter()
            .map(|t| (t.team.as_str(), t.growing, t.cost.as_str()))
            .collect();
        assert_eq!(teams, [("search", 1, "0.00"), ("support", 1, "50.75")]);

        let none = context_growth(&Conversations::default(), &catalog(), 5, 2, &no_name);
        assert_eq!(
            none.empty.as_deref(),
            Some("no request of the month carries a `conversation_id`")
        );
        let flat = context_growth(
            &conversations(vec![(("support", "c-falls"), falls)]),
            &catalog(),
            5,
            2,
            &no_name,
        );
        assert_eq!(
            flat.empty.as_deref(),
            Some(
                "no conversation of 3 or more requests has an input that keeps growing (1 conversation with a `conversation_id`, 1 of them with 3 or more requests)"
            )
        );
    }

    #[test]
    fn a_turn_knows_its_day_and_input() {
        let t = turn("r", 24 * 60 - 1, 5, 6, 7);
        assert_eq!(t.day(), day("2025-01-05"));
        assert_eq!(
            Turn {
                micros: t.micros + 60_000_000,
                ..t.clone()
            }
            .day(),
            day("2025-01-06")
        );
        assert_eq!(t.input_tokens(), 11);
        assert_eq!(t.tokens(), [5, 6, 0, 7]);
    }

    #[test]
    fn estimated_tokens_carry_their_catalog_share_of_each_cell() {
        // gpt-4o: 1M in (2.50) and 0.1M out (1.00) at catalog prices; the
        // cell was billed 3.60. The estimated 0.5M in and 0.05M out are
        // 1.75 of 3.50 at catalog prices: 3.60 × 1.75 / 3.50 = 1.80.
        let mut a = cell("a", "openai", "gpt-4o", [1_000_000, 0, 0, 100_000]);
        a.estimated_tokens = [500_000, 0, 0, 50_000];
        let b = cell("b", "openai", "gpt-4o", [1_000_000, 0, 0, 0]);
        // Only the output of this one was estimated: 0.60 of 0.645.
        let mut a2 = cell("a", "openai", "gpt-4o-mini", [300_000, 0, 0, 1_000_000]);
        a2.estimated_tokens = [0, 0, 0, 1_000_000];
        // No price on its day: the share of the tokens, a half of 0.40.
        let mut late = cell("a", "openai", "o-late", [1_000, 0, 0, 1_000]);
        late.estimated_tokens = [1_000, 0, 0, 0];
        let e = estimated_tokens(
            &[a, b, a2, late],
            &[d("3.60"), d("2.50"), d("0.645"), d("0.40")],
            &catalog(),
            &[("a", "Team A"), ("b", "Team B")],
            2,
        );
        assert_eq!(e.empty, None);
        assert_eq!((e.tokens, e.estimated_tokens), (3_402_000, 1_551_000));
        assert_eq!(e.share.as_deref(), Some("45.6%"));
        // 1.80 + 0.60 + 0.20
        assert_eq!(e.cost, "2.60");
        assert_eq!(e.teams.len(), 1, "teams without estimated tokens left out");
        let t = &e.teams[0];
        assert_eq!(
            (
                t.team_name.as_str(),
                t.tokens,
                t.share.as_deref(),
                t.cost.as_str()
            ),
            ("Team A", 2_402_000, Some("64.6%"), "2.60")
        );
        let none = estimated_tokens(&[], &[], &catalog(), &[], 2);
        assert!(none.empty.is_some());
        assert_eq!((none.share, none.cost.as_str()), (None, "0.00"));
    }

    #[test]
    fn model_sprawl_by_hand() {
        const M: u64 = 1_000_000;
        let cells = [
            cell("a", "openai", "gpt-4o", [M, 0, 0, M / 10]),
            cell("a", "anthropic", "claude-sonnet", [2 * M, M, 0, M / 5]),
            cell("b", "openai", "gpt-4o-mini", [10 * M, 0, 0, M]),
            cell("b", "mistral-ai", "mistral-small", [M, 0, 0, 0]),
        ];
        let costs = [d("3.60"), d("9.30"), d("2.10"), d("1.00")];
        let s = model_sprawl(&cells, &costs, &catalog(), 2, &no_name);
        let models: Vec<(&str, &str, Option<&str>)> = s
            .models
            .iter()
            .map(|m| (m.model.as_str(), m.cost.as_str(), m.catalog_cost.as_deref()))
            .collect();
        // By cost; gpt-4o's 1M in and 0.1M out are 3.50 at catalog prices.
        assert_eq!(
            models,
            [
                ("claude-sonnet", "9.30", Some("9.30")),
                ("gpt-4o", "3.60", Some("3.50")),
                ("gpt-4o-mini", "2.10", Some("2.10")),
                ("mistral-small", "1.00", Some("1.00")),
            ]
        );
        // a's general traffic: 3M in, 1M cached, 0.3M out; 3.50 + 9.30 =
        // 12.80 now; all on gpt-4o 7.50 + 1.25 + 3.00 = 11.75, on
        // claude-sonnet 9.00 + 0.30 + 4.50 = 13.80; o-late has no price
        // on the 5th and is no candidate.
        let tiers: Vec<(&str, &str, &str, &str, &str)> = s
            .tiers
            .iter()
            .map(|t| {
                (
                    t.team.as_str(),
                    t.tier.as_str(),
                    t.catalog_cost.as_str(),
                    t.cheapest.as_str(),
                    t.saving.as_str(),
                )
            })
            .collect();
        assert_eq!(
            tiers,
            [
                ("a", "general", "12.80", "openai/gpt-4o", "1.05"),
                ("b", "throughput", "2.10", "openai/gpt-4o-mini", "0.00"),
            ]
        );
        assert_eq!(
            s.tiers[0].models,
            ["anthropic/claude-sonnet", "openai/gpt-4o"]
        );
        assert_eq!(s.saving, "1.05");
        assert_eq!(s.not_comparable.len(), 1);
        let n = &s.not_comparable[0];
        assert_eq!(
            (n.model.as_str(), n.teams.as_slice(), n.reason.as_str()),
            (
                "mistral-small",
                &["b".to_string()][..],
                "the catalog gives it no tier"
            )
        );
        assert!(
            model_sprawl(&[], &[], &catalog(), 2, &no_name)
                .empty
                .is_some()
        );
    }
}

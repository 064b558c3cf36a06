//! Generates a synthetic, deterministic month of LLM usage for the demo and
//! for tests: tagged request logs (canonical schema, DESIGN §3.1), the
//! matching FOCUS 1.2 bill of the providers that send one (§3.2) and the
//! price catalog (§3.3).
//!
//! ```text
//! cargo run --release --example generate_month -- --out fixtures/demo \
//!     --rows 20000 --teams 8 --seed 42 --period 2025-01
//! ```
//!
//! Scales to the benchmark's months (`bench/run.sh`: 1M, 10M, 100M rows):
//! a request is packed into 32 bytes, duplicates are placed in O(log n)
//! each, and large files are written in batches of row groups. `--policy`
//! also writes a `chargeback.toml` naming every team. `--timestamps typed`
//! writes the Parquet `timestamp` as `timestamp[ms, UTC]` instead of text,
//! and `--team-weights even` gives every team about as many requests (the
//! month of many small teams, `bench/run.sh --sizes teams-even`).
//!
//! The same arguments always give byte-identical files: every random draw
//! comes from seeded SplitMix64 streams, floats only go through IEEE-exact
//! operations (`+ - * /`, rounding, and our own `exp` built from them, not
//! the platform libm), and every output is written in a fixed order. Money is computed with `rust_decimal` only;
//! floats are used solely to sample token counts and weights.

// Floats sample token counts and weights here (money is `rust_decimal`),
// and the sampled values are cast to counts on purpose.
#![allow(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chargeback::money::Decimal;
use chargeback::schema::{focus, request, usage_type};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Weekday};
use polars::prelude::*;
use rust_decimal::RoundingStrategy;
use serde_json::json;

const USAGE: &str = "\
generate_month: write a synthetic month of LLM usage, its FOCUS bill and a price catalog

USAGE:
    cargo run --release --example generate_month -- --out DIR [OPTIONS]

OPTIONS:
    --out DIR          output folder (required); gets requests/, billing/, model-catalog.json
    --rows N           request-log rows to write, duplicates included   [default: 20000]
    --teams N          number of teams                                    [default: 8]
    --seed N           seed of the random stream                          [default: 42]
    --period YYYY-MM   month to generate                                  [default: 2025-01]
    --files N          request-log files (rows split evenly)              [default: 4]
    --format F         request-log format: parquet | csv | jsonl          [default: parquet]
    --timestamps T     Parquet `timestamp` column: text (RFC 3339) | typed
                       (timestamp[ms, UTC])                               [default: text]
    --team-weights W   requests per team: zipf (the k-th team 1/k) | even [default: zipf]
    --policy           also write chargeback.toml: a policy for the month naming every team
    --verbose          also print per-team volume and cost to stderr
    -h, --help         print this help
";

// FOCUS 1.2 columns `chargeback::schema::focus` does not name (we only
// write them; the reader does not need them).
const BILLING_ACCOUNT_ID: &str = "BillingAccountId";
const BILLING_ACCOUNT_NAME: &str = "BillingAccountName";
const BILLING_PERIOD_START: &str = "BillingPeriodStart";
const BILLING_PERIOD_END: &str = "BillingPeriodEnd";
const CHARGE_PERIOD_END: &str = "ChargePeriodEnd";
const CHARGE_FREQUENCY: &str = "ChargeFrequency";
const INVOICE_ISSUER_NAME: &str = "InvoiceIssuerName";
const SERVICE_CATEGORY: &str = "ServiceCategory";
const SUB_ACCOUNT_NAME: &str = "SubAccountName";
const LIST_UNIT_PRICE: &str = "ListUnitPrice";
const LIST_COST: &str = "ListCost";
const CONTRACTED_UNIT_PRICE: &str = "ContractedUnitPrice";
const CONTRACTED_COST: &str = "ContractedCost";
const EFFECTIVE_COST: &str = "EffectiveCost";

/// Decimal places of `BilledCost` in the generated bill.
const COST_DP: u32 = 10;

// ---------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(mix64(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F)))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in [0, 1), 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Approximately standard normal (Irwin–Hall, 12 uniforms): only
    /// additions, so bit-identical everywhere.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }

    /// Log-normal with the given median and shape.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * exp(sigma * self.normal())
    }

    /// Index drawn with probability proportional to `weights`.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// The SplitMix64 finaliser: a bijection on `u64`.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `e^x` from basic IEEE operations only (the platform `exp` may differ in
/// the last bit between libms, which would break byte-identical output).
fn exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let n = (x * std::f64::consts::LOG2_E).round();
    let r = x - n * std::f64::consts::LN_2;
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for k in 1..=18 {
        term = term * r / f64::from(k);
        sum += term;
    }
    sum * f64::from_bits(((n as i64 + 1023) as u64) << 52)
}

// ---------------------------------------------------------------------------
// The world: catalog, scopes, teams
// ---------------------------------------------------------------------------

struct ModelSpec {
    provider: &'static str,
    model: &'static str,
    aliases: &'static [&'static str],
    tier: &'static str,
    context_window: u64,
    source: &'static str,
    input: &'static str,
    cached_input: Option<&'static str>,
    cache_write: Option<&'static str>,
    output: &'static str,
}

const CATALOG: &[ModelSpec] = &[
    ModelSpec {
        provider: "openai",
        model: "gpt-4o",
        aliases: &["gpt-4o-2024-08-06", "GPT-4o"],
        tier: "general",
        context_window: 128_000,
        source: "https://openai.com/api/pricing",
        input: "5.00",
        cached_input: Some("2.50"),
        cache_write: None,
        output: "15.00",
    },
    ModelSpec {
        provider: "openai",
        model: "gpt-4o-mini",
        aliases: &["gpt-4o-mini-2024-07-18"],
        tier: "throughput",
        context_window: 128_000,
        source: "https://openai.com/api/pricing",
        input: "0.15",
        cached_input: Some("0.075"),
        cache_write: None,
        output: "0.60",
    },
    ModelSpec {
        provider: "anthropic",
        model: "claude-3-5-sonnet",
        aliases: &["claude-3-5-sonnet-20241022", "Claude 3.5 Sonnet"],
        tier: "general",
        context_window: 200_000,
        source: "https://www.anthropic.com/pricing#api",
        input: "3.00",
        cached_input: Some("0.30"),
        cache_write: Some("3.75"),
        output: "15.00",
    },
    ModelSpec {
        provider: "anthropic",
        model: "claude-3-5-haiku",
        aliases: &["haiku-3.5", "claude-3-5-haiku-20241022"],
        tier: "balanced",
        context_window: 200_000,
        source: "https://www.anthropic.com/pricing#api",
        input: "1.25",
        cached_input: Some("0.125"),
        cache_write: Some("1.5625"),
        output: "5.00",
    },
    ModelSpec {
        provider: "mistral",
        model: "mistral-large",
        aliases: &["mistral-large-latest", "mistral-large-2411"],
        tier: "general",
        context_window: 128_000,
        source: "https://mistral.ai/pricing#api-pricing",
        input: "2.00",
        cached_input: None,
        cache_write: None,
        output: "6.00",
    },
];

const CATALOG_REFRESHED: &str = "2024-12-01";
const PRICES_EFFECTIVE_FROM: &str = "2024-01-01";

fn model_spec(provider: &str, model: &str) -> &'static ModelSpec {
    CATALOG
        .iter()
        .find(|m| m.provider == provider && m.model == model)
        .expect("model in the generator's catalog")
}

/// How a billing provider appears on its FOCUS export.
struct BillingProvider {
    provider: &'static str,
    provider_name: &'static str,
    service_name: &'static str,
    account_id: &'static str,
    /// Negotiated discount on list prices, as a multiplier.
    discount: Option<&'static str>,
}

const BILLING_PROVIDERS: &[BillingProvider] = &[
    BillingProvider {
        provider: "anthropic",
        provider_name: "Anthropic",
        service_name: "Claude API",
        account_id: "org_01HZX3K9ANTHR0P1CDEM0",
        discount: Some("0.90"),
    },
    BillingProvider {
        provider: "openai",
        provider_name: "OpenAI",
        service_name: "OpenAI API",
        account_id: "org-Xa81cQ3pLm7vT2dEm0",
        discount: None,
    },
];

fn billing_provider(provider: &str) -> Option<&'static BillingProvider> {
    BILLING_PROVIDERS.iter().find(|b| b.provider == provider)
}

const ORG_NAME: &str = "Example Corp";

/// Human names of the provider-side scopes.
fn scope_name(scope: &str) -> &'static str {
    match scope {
        "proj_core" => "Core product",
        "proj_labs" => "Labs",
        "wrkspc_prod" => "Production",
        "wrkspc_dev" => "Development",
        _ => "Default",
    }
}

/// A use case and its typical prompt and completion sizes (median tokens).
#[derive(Clone, Copy)]
struct UseCase {
    name: &'static str,
    prompt: f64,
    completion: f64,
}

const fn uc(name: &'static str, prompt: f64, completion: f64) -> UseCase {
    UseCase {
        name,
        prompt,
        completion,
    }
}

/// Where a team's requests go: provider, billing scope, model (canonical).
#[derive(Clone, Copy)]
struct Route {
    weight: f64,
    provider: &'static str,
    scope: Option<&'static str>,
    model: &'static str,
}

const fn rt(
    weight: f64,
    provider: &'static str,
    scope: &'static str,
    model: &'static str,
) -> Route {
    Route {
        weight,
        provider,
        scope: if scope.is_empty() { None } else { Some(scope) },
        model,
    }
}

struct Team {
    id: String,
    weight: f64,
    use_cases: Vec<UseCase>,
    routes: Vec<Route>,
}

const GENERIC_USE_CASES: &[UseCase] = &[
    uc("chat", 2000.0, 400.0),
    uc("batch-enrich", 1500.0, 200.0),
    uc("prototype", 3000.0, 600.0),
    uc("summarize", 5000.0, 350.0),
    uc("classify", 800.0, 20.0),
    uc("extract", 3500.0, 250.0),
];

const GENERIC_ROUTES: &[Route] = &[
    rt(1.0, "openai", "proj_core", "gpt-4o-mini"),
    rt(1.0, "openai", "proj_core", "gpt-4o"),
    rt(1.0, "openai", "proj_labs", "gpt-4o-mini"),
    rt(1.0, "openai", "proj_labs", "gpt-4o"),
    rt(1.0, "anthropic", "wrkspc_prod", "claude-3-5-haiku"),
    rt(1.0, "anthropic", "wrkspc_prod", "claude-3-5-sonnet"),
    rt(1.0, "anthropic", "wrkspc_dev", "claude-3-5-haiku"),
    rt(1.0, "anthropic", "wrkspc_dev", "claude-3-5-sonnet"),
];

/// The eight named teams, largest first; more teams are `team-09`, ….
fn named_team(k: usize) -> Option<(&'static str, Vec<UseCase>, Vec<Route>)> {
    let t = match k {
        0 => (
            "support",
            vec![
                uc("ticket-triage", 1200.0, 60.0),
                uc("reply-draft", 2500.0, 350.0),
                uc("thread-summary", 6000.0, 400.0),
                uc("kb-answer", 3500.0, 300.0),
            ],
            vec![
                rt(0.40, "openai", "proj_core", "gpt-4o-mini"),
                rt(0.15, "openai", "proj_core", "gpt-4o"),
                rt(0.30, "anthropic", "wrkspc_prod", "claude-3-5-haiku"),
                rt(0.15, "anthropic", "wrkspc_prod", "claude-3-5-sonnet"),
            ],
        ),
        1 => (
            "search",
            vec![
                uc("query-rewrite", 400.0, 40.0),
                uc("rerank", 2200.0, 25.0),
                uc("answer-synthesis", 5000.0, 450.0),
            ],
            vec![
                rt(0.45, "openai", "proj_core", "gpt-4o-mini"),
                rt(0.30, "openai", "proj_core", "gpt-4o"),
                rt(0.05, "openai", "proj_labs", "gpt-4o"),
                rt(0.20, "anthropic", "wrkspc_prod", "claude-3-5-haiku"),
            ],
        ),
        2 => (
            "copilot",
            vec![
                uc("code-complete", 3000.0, 120.0),
                uc("code-review", 9000.0, 800.0),
                uc("dev-chat", 4000.0, 600.0),
            ],
            vec![
                rt(0.55, "anthropic", "wrkspc_prod", "claude-3-5-sonnet"),
                rt(0.15, "anthropic", "wrkspc_dev", "claude-3-5-sonnet"),
                rt(0.30, "openai", "proj_labs", "gpt-4o"),
            ],
        ),
        3 => (
            "data-science",
            vec![
                uc("eval-runs", 2500.0, 500.0),
                uc("labeling", 900.0, 30.0),
                uc("experiments", 6000.0, 900.0),
            ],
            vec![
                rt(0.30, "openai", "proj_labs", "gpt-4o"),
                rt(0.20, "openai", "proj_labs", "gpt-4o-mini"),
                rt(0.20, "anthropic", "wrkspc_dev", "claude-3-5-sonnet"),
                rt(0.18, "anthropic", "wrkspc_dev", "claude-3-5-haiku"),
                rt(0.08, "mistral", "", "mistral-large"),
            ],
        ),
        4 => (
            "marketing",
            vec![
                uc("copywriting", 1500.0, 700.0),
                uc("seo-briefs", 2500.0, 1200.0),
            ],
            vec![
                rt(0.50, "openai", "proj_labs", "gpt-4o"),
                rt(0.25, "openai", "proj_labs", "gpt-4o-mini"),
                rt(0.15, "mistral", "", "mistral-large"),
            ],
        ),
        5 => (
            "legal",
            vec![
                uc("contract-review", 18000.0, 1500.0),
                uc("clause-extract", 8000.0, 400.0),
            ],
            vec![
                rt(0.85, "anthropic", "wrkspc_prod", "claude-3-5-sonnet"),
                rt(0.15, "openai", "proj_core", "gpt-4o"),
            ],
        ),
        6 => (
            "finance-ops",
            vec![
                uc("invoice-extract", 3000.0, 250.0),
                uc("variance-notes", 4000.0, 600.0),
                uc("close-checklist", 2000.0, 300.0),
            ],
            vec![
                rt(0.60, "openai", "proj_core", "gpt-4o-mini"),
                rt(0.40, "anthropic", "wrkspc_dev", "claude-3-5-haiku"),
            ],
        ),
        7 => (
            "hr-bot",
            vec![
                uc("policy-qa", 2500.0, 250.0),
                uc("onboarding", 1800.0, 400.0),
            ],
            vec![
                rt(0.85, "openai", "proj_core", "gpt-4o-mini"),
                rt(0.15, "openai", "proj_core", "gpt-4o"),
            ],
        ),
        _ => return None,
    };
    Some(t)
}

fn build_teams(n: usize, weights: TeamWeights, rng: &mut Rng) -> Vec<Team> {
    (0..n)
        .map(|k| {
            let weight = match weights {
                // Zipf-like long tail: the k-th team gets weight 1/k.
                TeamWeights::Zipf => 1.0 / (k + 1) as f64,
                TeamWeights::Even => 1.0,
            };
            if let Some((id, use_cases, routes)) = named_team(k) {
                return Team {
                    id: id.to_string(),
                    weight,
                    use_cases,
                    routes,
                };
            }
            let n_uc = rng.range(2, 4) as usize;
            let mut pool: Vec<UseCase> = GENERIC_USE_CASES.to_vec();
            let mut use_cases = Vec::with_capacity(n_uc);
            for _ in 0..n_uc {
                let i = rng.range(0, pool.len() as u64 - 1) as usize;
                use_cases.push(pool.remove(i));
            }
            let n_routes = rng.range(1, 3) as usize;
            let mut pool: Vec<Route> = GENERIC_ROUTES.to_vec();
            let mut routes = Vec::with_capacity(n_routes);
            for _ in 0..n_routes {
                let i = rng.range(0, pool.len() as u64 - 1) as usize;
                let mut r = pool.remove(i);
                r.weight = 0.2 + rng.unit();
                routes.push(r);
            }
            if rng.chance(0.3) {
                routes.push(rt(0.10, "mistral", "", "mistral-large"));
            }
            Team {
                id: format!("team-{:02}", k + 1),
                weight,
                use_cases,
                routes,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// One generated request, packed into 32 bytes so that a month of 100M
/// requests fits in memory; names are looked up through the team.
#[derive(Clone, Copy)]
struct Req {
    /// Milliseconds since the start of the period, UTC (a month < 2^32 ms).
    at_ms: u32,
    /// The request's number `i`; its id is [`request_id`]`(seed, i)`.
    n: u32,
    team: u32,
    input: u32,
    cached: u32,
    cache_write: u32,
    output: u32,
    /// Index into the team's routes and use cases.
    route: u8,
    use_case: u8,
    flags: u8,
}

/// The row carries the team and use case tags.
const TAGGED: u8 = 1;
/// Written with a `+02:00` offset instead of `Z`.
const PLUS_TWO: u8 = 2;
/// Status `error`.
const ERROR: u8 = 4;
/// The model is logged under its first alias.
const ALIAS: u8 = 8;

impl Req {
    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn route<'t>(&self, teams: &'t [Team]) -> &'t Route {
        &teams[self.team as usize].routes[self.route as usize]
    }

    fn tokens(&self) -> [u64; 4] {
        [self.input, self.cached, self.cache_write, self.output].map(u64::from)
    }
}

/// The id of the `i`-th request: distinct for distinct `i` (`mix64` is a
/// bijection), and its text sorts like the number.
fn request_id(seed: u64, i: u64) -> u64 {
    mix64(seed.wrapping_mul(0x1_0000_0001) ^ i)
}

const DAY_MS: i64 = 86_400_000;

const HOUR_WEIGHTS: [f64; 24] = [
    0.20, 0.15, 0.10, 0.10, 0.10, 0.15, 0.30, 0.50, 0.80, 1.00, 1.00, 1.00, 0.90, 1.00, 1.00, 1.00,
    0.95, 0.85, 0.70, 0.50, 0.40, 0.35, 0.30, 0.25,
];

/// The month's requests: `unique` distinct ones in time order, and the
/// order of the log rows, as indexes into them (a duplicate repeats one).
struct Requests {
    unique: Vec<Req>,
    rows: Vec<u32>,
    dups: usize,
}

fn generate_requests(args: &Args, teams: &[Team], days: &[NaiveDate], rng: &mut Rng) -> Requests {
    let team_weights: Vec<f64> = teams.iter().map(|t| t.weight).collect();
    let route_weights: Vec<Vec<f64>> = teams
        .iter()
        .map(|t| t.routes.iter().map(|r| r.weight).collect())
        .collect();
    let day_weights: Vec<f64> = days
        .iter()
        .map(|d| match d.weekday() {
            Weekday::Sat | Weekday::Sun => 0.3,
            _ => 1.0,
        })
        .collect();
    // ~0.5% of the rows are exact copies of others (a retried upload).
    let dups = if args.rows >= 200 { args.rows / 200 } else { 0 };
    let unique = args.rows - dups;
    let mut reqs = Vec::with_capacity(unique);
    for i in 0..unique {
        let ti = rng.weighted(&team_weights);
        let team = &teams[ti];
        let ri = rng.weighted(&route_weights[ti]);
        let route = team.routes[ri];
        let ui = rng.range(0, team.use_cases.len() as u64 - 1) as usize;
        let use_case = team.use_cases[ui];
        let tagged = !rng.chance(0.03);

        let day = rng.weighted(&day_weights) as i64;
        let hour = rng.weighted(&HOUR_WEIGHTS) as i64;
        let at_ms = day * DAY_MS + hour * 3_600_000 + rng.range(0, 3_600_000 - 1) as i64;
        let plus_two = rng.chance(0.01);

        // Heavy-tailed sizes: log-normal, and now and then a long context.
        let mut prompt = rng.lognormal(use_case.prompt, 1.0);
        if rng.chance(0.02) {
            prompt *= 8.0;
        }
        let prompt = prompt.clamp(20.0, 150_000.0) as i64;
        let completion = rng.lognormal(use_case.completion, 0.8).clamp(1.0, 8192.0) as i64;
        let (mut input, mut cached, mut cache_write) = (prompt, 0i64, 0i64);
        match route.provider {
            // Automatic prompt caching: prompts of 1024+ tokens, in blocks
            // of 128.
            "openai" if prompt >= 1024 && rng.chance(0.36) => {
                let frac = 0.4 + 0.55 * rng.unit();
                cached = ((prompt as f64 * frac) as i64 / 128) * 128;
            }
            "anthropic" => {
                let u = rng.unit();
                if u < 0.30 {
                    cached = (prompt as f64 * (0.5 + 0.45 * rng.unit())) as i64;
                } else if u < 0.42 {
                    cache_write = (prompt as f64 * (0.3 + 0.5 * rng.unit())) as i64;
                }
            }
            _ => {}
        }
        input -= cached + cache_write;
        let error = rng.chance(0.02);
        let output = if error { 0 } else { completion };

        let alias = match route.model {
            "gpt-4o" => rng.chance(0.25),
            "claude-3-5-sonnet" => rng.chance(0.10),
            _ => false,
        };
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        reqs.push(Req {
            at_ms: u32::try_from(at_ms).expect("a month is less than 2^32 ms"),
            n: u32::try_from(i).expect("at most 2^32 requests"),
            team: ti as u32,
            input: input as u32,
            cached: cached as u32,
            cache_write: cache_write as u32,
            output: output as u32,
            route: ri as u8,
            use_case: ui as u8,
            flags: flag(tagged, TAGGED)
                | flag(plus_two, PLUS_TWO)
                | flag(error, ERROR)
                | flag(alias, ALIAS),
        });
    }
    // Log files are written in time order, like a gateway's hourly dumps
    // (ids are distinct, so the order is total).
    let seed = args.seed;
    reqs.sort_unstable_by_key(|r| (r.at_ms, request_id(seed, u64::from(r.n))));
    // Exact duplicates land anywhere, often in another file.
    let rows = insert_duplicates(unique, dups, rng);
    Requests {
        unique: reqs,
        rows,
        dups,
    }
}

/// The row order after `dups` times copying the row at a random index
/// `< unique` to a random place, as if done one by one in a vector, in
/// O(log n) per copy: a Fenwick tree counts, for each gap before an
/// original row (and one after the last), the copies placed in it.
fn insert_duplicates(unique: usize, dups: usize, rng: &mut Rng) -> Vec<u32> {
    if dups == 0 {
        return (0..unique as u32).collect();
    }
    // Block g = the copies in gap g, then original row g (the last block
    // has no original row).
    let blocks = unique + 1;
    let mut tree = vec![0u32; blocks + 1];
    for g in 1..=unique {
        tree[g] += 1;
        let parent = g + (g & g.wrapping_neg());
        if parent <= blocks {
            tree[parent] += tree[g];
        }
    }
    let top = 1usize << (usize::BITS - 1 - blocks.leading_zeros());
    // The block holding index `p` and the offset in it: the last block
    // starting at or before `p`.
    let locate = |tree: &[u32], p: u64| -> (usize, u64) {
        let (mut at, mut rest, mut step) = (0usize, p, top);
        while step > 0 {
            if at + step <= blocks && u64::from(tree[at + step]) <= rest {
                at += step;
                rest -= u64::from(tree[at]);
            }
            step >>= 1;
        }
        if at == blocks {
            // Past every block: the end of the last one.
            (
                unique,
                rest + u64::from(tree_block_len(tree, unique, blocks)),
            )
        } else {
            (at, rest)
        }
    };
    let mut gaps: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut len = unique as u64;
    for _ in 0..dups {
        let src = rng.range(0, unique as u64 - 1);
        let (g, off) = locate(&tree, src);
        let copies = gaps.get(&g).map_or(0, Vec::len);
        let copy = if (off as usize) < copies {
            gaps[&g][off as usize]
        } else {
            g as u32
        };
        let pos = rng.range(0, len);
        let (g, off) = locate(&tree, pos);
        gaps.entry(g).or_default().insert(off as usize, copy);
        let mut i = g + 1;
        while i <= blocks {
            tree[i] += 1;
            i += i & i.wrapping_neg();
        }
        len += 1;
    }
    let mut rows = Vec::with_capacity(len as usize);
    for g in 0..=unique {
        if let Some(copies) = gaps.get(&g) {
            rows.extend_from_slice(copies);
        }
        if g < unique {
            rows.push(g as u32);
        }
    }
    rows
}

/// The size of block `g` (0-based) read back from the tree.
fn tree_block_len(tree: &[u32], g: usize, blocks: usize) -> u32 {
    let prefix = |mut i: usize| {
        let mut s = 0u32;
        while i > 0 {
            s += tree[i];
            i -= i & i.wrapping_neg();
        }
        s
    };
    debug_assert!(g < blocks);
    prefix(g + 1) - prefix(g)
}

/// RFC 3339 with milliseconds, `Z` or `+02:00`.
fn timestamp_text(start: NaiveDateTime, r: &Req, out: &mut String) {
    use std::fmt::Write as _;
    let mut t = start + Duration::milliseconds(i64::from(r.at_ms));
    if r.has(PLUS_TWO) {
        t += Duration::hours(2);
    }
    let (d, time) = (t.date(), t.time());
    let ms = time.nanosecond() / 1_000_000;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{ms:03}{}",
        d.year(),
        d.month(),
        d.day(),
        time.hour(),
        time.minute(),
        time.second(),
        if r.has(PLUS_TWO) { "+02:00" } else { "Z" }
    );
}

fn requests_frame(
    rows: &[u32],
    reqs: &[Req],
    teams: &[Team],
    start: NaiveDateTime,
    args: &Args,
) -> PolarsResult<DataFrame> {
    let seed = args.seed;
    use request::*;
    let rows = || rows.iter().map(|&k| &reqs[k as usize]);
    let name = |r: &Req| -> &'static str {
        let route = r.route(teams);
        let spec = model_spec(route.provider, route.model);
        if r.has(ALIAS) {
            spec.aliases[0]
        } else {
            spec.model
        }
    };
    let mut buf = String::new();
    let ids: Vec<String> = rows()
        .map(|r| format!("req_{:016x}", request_id(seed, u64::from(r.n))))
        .collect();
    let times = match args.timestamps {
        Timestamps::Text => Column::new(
            TIMESTAMP.into(),
            rows()
                .map(|r| {
                    buf.clear();
                    timestamp_text(start, r, &mut buf);
                    buf.clone()
                })
                .collect::<Vec<String>>(),
        ),
        // The instant itself: a `+02:00` row is the same instant in UTC.
        Timestamps::Typed => {
            let start_ms = start.and_utc().timestamp_millis();
            Column::new(
                TIMESTAMP.into(),
                rows()
                    .map(|r| start_ms + i64::from(r.at_ms))
                    .collect::<Vec<i64>>(),
            )
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))?
        }
    };
    let tagged = |r: &Req| r.has(TAGGED);
    let int = |n: &str, f: &dyn Fn(&Req) -> u32| {
        Column::new(
            n.into(),
            rows().map(|r| i64::from(f(r))).collect::<Vec<i64>>(),
        )
    };
    let columns = vec![
        Column::new(REQUEST_ID.into(), ids),
        times,
        Column::new(
            PROVIDER.into(),
            rows()
                .map(|r| r.route(teams).provider)
                .collect::<Vec<&str>>(),
        ),
        Column::new(MODEL.into(), rows().map(name).collect::<Vec<&str>>()),
        Column::new(
            BILLING_SCOPE.into(),
            rows()
                .map(|r| r.route(teams).scope)
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::new(
            TEAM.into(),
            rows()
                .map(|r| tagged(r).then(|| teams[r.team as usize].id.as_str()))
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::new(
            USE_CASE.into(),
            rows()
                .map(|r| {
                    tagged(r).then(|| teams[r.team as usize].use_cases[r.use_case as usize].name)
                })
                .collect::<Vec<Option<&str>>>(),
        ),
        int(INPUT_TOKENS, &|r| r.input),
        int(CACHED_INPUT_TOKENS, &|r| r.cached),
        int(CACHE_WRITE_TOKENS, &|r| r.cache_write),
        int(OUTPUT_TOKENS, &|r| r.output),
        Column::new(
            STATUS.into(),
            rows()
                .map(|r| if r.has(ERROR) { "error" } else { "ok" })
                .collect::<Vec<&str>>(),
        ),
    ];
    DataFrame::new(rows().len(), columns)
}

/// Rows per Parquet row group, and rows per batch handed to a writer (a
/// multiple of it; a file that fits one batch is written in one go).
const ROW_GROUP: usize = 64 * 1024;
const BATCH: usize = 16 * ROW_GROUP;

fn write_requests(
    dir: &Path,
    gen_reqs: &Requests,
    teams: &[Team],
    start: NaiveDateTime,
    args: &Args,
) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Parts of an earlier run with more files would be picked up by a glob.
    let stale = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in stale.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("part-")
            && [".parquet", ".csv", ".jsonl"]
                .iter()
                .any(|x| name.ends_with(x));
        if ours {
            fs::remove_file(entry.path())
                .map_err(|e| format!("cannot remove {}: {e}", entry.path().display()))?;
        }
    }
    let rows = &gen_reqs.rows;
    let mut written = Vec::new();
    for k in 0..args.files {
        let lo = k * rows.len() / args.files;
        let hi = (k + 1) * rows.len() / args.files;
        let path = dir.join(format!("part-{k:03}.{}", args.format.extension()));
        let err = |e: PolarsError| format!("cannot write {}: {e}", path.display());
        let file =
            File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut out = BufWriter::new(file);
        let frame = |lo: usize, hi: usize| {
            requests_frame(&rows[lo..hi], &gen_reqs.unique, teams, start, args)
                .map_err(|e| e.to_string())
        };
        match args.format {
            Format::Parquet => {
                let writer = ParquetWriter::new(&mut out)
                    .with_compression(ParquetCompression::Zstd(None))
                    .with_row_group_size(Some(ROW_GROUP));
                if hi - lo <= BATCH {
                    writer.finish(&mut frame(lo, hi)?).map_err(err)?;
                } else {
                    let mut batched = None;
                    for b in (lo..hi).step_by(BATCH) {
                        let mut df = frame(b, (b + BATCH).min(hi))?;
                        if batched.is_none() {
                            batched = Some(writer_for(&mut out, &df).map_err(err)?);
                        }
                        let chunked =
                            polars::frame::chunk_df_for_writing(&mut df, ROW_GROUP).map_err(err)?;
                        batched
                            .as_mut()
                            .expect("made above")
                            .write_batch(&chunked)
                            .map_err(err)?;
                    }
                    batched.expect("at least one batch").finish().map_err(err)?;
                }
            }
            Format::Csv | Format::Jsonl => {
                for b in (lo..hi).step_by(BATCH) {
                    let mut df = frame(b, (b + BATCH).min(hi))?;
                    match args.format {
                        Format::Csv => CsvWriter::new(&mut out)
                            .include_header(b == lo)
                            .finish(&mut df),
                        _ => JsonWriter::new(&mut out)
                            .with_json_format(JsonFormat::JsonLines)
                            .finish(&mut df),
                    }
                    .map_err(err)?;
                }
            }
        }
        out.flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// A Parquet writer for a file written in several batches, with the same
/// options as a file written whole.
fn writer_for<'w, W: Write>(
    out: &'w mut W,
    first: &DataFrame,
) -> PolarsResult<polars::io::parquet::write::BatchedWriter<&'w mut W>> {
    ParquetWriter::new(out)
        .with_compression(ParquetCompression::Zstd(None))
        .with_row_group_size(Some(ROW_GROUP))
        .batched(first.schema())
}

// ---------------------------------------------------------------------------
// The bill
// ---------------------------------------------------------------------------

const USAGE_TYPES: [&str; 4] = [
    usage_type::INPUT,
    usage_type::CACHED_INPUT,
    usage_type::CACHE_WRITE,
    usage_type::OUTPUT,
];

/// provider, scope, day index, canonical model, usage type index.
type CellKey = (&'static str, &'static str, usize, &'static str, usize);

fn dec(text: &str) -> Decimal {
    text.parse().expect("a decimal literal")
}

fn list_price(spec: &ModelSpec, ut: usize) -> &'static str {
    match ut {
        0 => spec.input,
        1 => spec.cached_input.unwrap_or(spec.input),
        2 => spec.cache_write.unwrap_or(spec.input),
        _ => spec.output,
    }
}

fn million() -> Decimal {
    Decimal::from(1_000_000u64)
}

/// Cost of `tokens` at `per_mtok`, rounded to the bill's precision.
fn cost_of(tokens: u64, per_mtok: Decimal) -> Decimal {
    (Decimal::from(tokens) * per_mtok / million())
        .round_dp_with_strategy(COST_DP, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

fn contracted_price(bp: &BillingProvider, list: Decimal) -> Decimal {
    match bp.discount {
        Some(m) => {
            let mut p = (list * dec(m)).normalize();
            if p.scale() < 2 {
                p.rescale(2);
            }
            p
        }
        None => list,
    }
}

struct BillSummary {
    lines: usize,
    usage_total: Decimal,
    all_total: Decimal,
    gaps: Vec<String>,
}

fn write_bill(
    path: &Path,
    reqs: &[Req],
    teams: &[Team],
    days: &[NaiveDate],
    period_end: NaiveDate,
    rng: &mut Rng,
) -> Result<BillSummary, String> {
    // Logged tokens per cell, duplicates dropped (`reqs` are the distinct
    // requests), failed requests included (the providers bill them).
    let mut cells: BTreeMap<CellKey, u64> = BTreeMap::new();
    for r in reqs {
        let route = r.route(teams);
        if billing_provider(route.provider).is_none() {
            continue;
        }
        let day = (i64::from(r.at_ms) / DAY_MS) as usize;
        let scope = route.scope.unwrap_or("");
        for (ut, n) in r.tokens().into_iter().enumerate() {
            if n > 0 {
                *cells
                    .entry((route.provider, scope, day, route.model, ut))
                    .or_default() += n;
            }
        }
    }

    // One scope-day per billed provider with a clear gap: traffic that
    // bypassed the gateway. The busiest scope, a random day.
    let mut scope_tokens: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (&(p, s, ..), &n) in &cells {
        *scope_tokens.entry((p, s)).or_default() += n;
    }
    let mut gap_days: BTreeSet<(&str, &str, usize)> = BTreeSet::new();
    for bp in BILLING_PROVIDERS {
        let busiest = scope_tokens
            .iter()
            .filter(|((p, _), _)| *p == bp.provider)
            .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)));
        if let Some((&(p, s), _)) = busiest {
            let lo = 2.min(days.len() - 1) as u64;
            let hi = (days.len() as u64).saturating_sub(3).max(lo);
            gap_days.insert((p, s, rng.range(lo, hi) as usize));
        }
    }

    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_path(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let header = [
        BILLING_ACCOUNT_ID,
        BILLING_ACCOUNT_NAME,
        focus::BILLING_CURRENCY,
        BILLING_PERIOD_START,
        BILLING_PERIOD_END,
        focus::CHARGE_PERIOD_START,
        CHARGE_PERIOD_END,
        focus::CHARGE_CATEGORY,
        focus::CHARGE_CLASS,
        focus::CHARGE_DESCRIPTION,
        CHARGE_FREQUENCY,
        focus::PROVIDER_NAME,
        focus::PUBLISHER_NAME,
        INVOICE_ISSUER_NAME,
        focus::SERVICE_NAME,
        SERVICE_CATEGORY,
        focus::SUB_ACCOUNT_ID,
        SUB_ACCOUNT_NAME,
        focus::CONSUMED_QUANTITY,
        focus::CONSUMED_UNIT,
        focus::PRICING_QUANTITY,
        focus::PRICING_UNIT,
        LIST_UNIT_PRICE,
        LIST_COST,
        CONTRACTED_UNIT_PRICE,
        CONTRACTED_COST,
        focus::BILLED_COST,
        EFFECTIVE_COST,
        focus::X_MODEL,
        focus::X_USAGE_TYPE,
    ];
    let io = |e: csv::Error| format!("cannot write {}: {e}", path.display());
    w.write_record(header).map_err(io)?;

    let iso = |d: NaiveDate| format!("{}T00:00:00Z", d.format("%Y-%m-%d"));
    let (bill_start, bill_end) = (iso(days[0]), iso(period_end));
    let mut summary = BillSummary {
        lines: 0,
        usage_total: Decimal::ZERO,
        all_total: Decimal::ZERO,
        gaps: Vec::new(),
    };
    let mut provider_usage: BTreeMap<&str, Decimal> = BTreeMap::new();
    for (&(p, scope, day, model, ut), &logged) in &cells {
        let bp = billing_provider(p).expect("billed provider");
        let spec = model_spec(p, model);
        // Unlogged traffic: 1.0–1.9% everywhere, 10–12% on the gap days.
        let basis_points = if gap_days.contains(&(p, scope, day)) {
            rng.range(1000, 1200)
        } else {
            rng.range(100, 190)
        };
        let tokens = logged + logged * basis_points / 10_000;
        let list = dec(list_price(spec, ut));
        let contracted = contracted_price(bp, list);
        let list_cost = cost_of(tokens, list);
        let billed = cost_of(tokens, contracted);
        let (start, end) = (iso(days[day]), iso(days[day] + Duration::days(1)));
        let usage = USAGE_TYPES[ut];
        let description = format!("{model} {} tokens", usage.replace('_', " "));
        let quantity = tokens.to_string();
        let pricing_quantity = (Decimal::from(tokens) / million()).normalize().to_string();
        let (list_s, list_cost_s) = (list.to_string(), list_cost.to_string());
        let (contracted_s, billed_s) = (contracted.to_string(), billed.to_string());
        let record: [&str; 30] = [
            bp.account_id,
            ORG_NAME,
            "USD",
            &bill_start,
            &bill_end,
            &start,
            &end,
            "Usage",
            "",
            &description,
            "Usage-Based",
            bp.provider_name,
            bp.provider_name,
            bp.provider_name,
            bp.service_name,
            "AI and Machine Learning",
            scope,
            scope_name(scope),
            &quantity,
            "Tokens",
            &pricing_quantity,
            "1000000 Tokens",
            &list_s,
            &list_cost_s,
            &contracted_s,
            &billed_s,
            &billed_s,
            &billed_s,
            model,
            usage,
        ];
        w.write_record(record).map_err(io)?;
        summary.lines += 1;
        summary.usage_total += billed;
        *provider_usage.entry(p).or_default() += billed;
    }
    for &(p, s, d) in &gap_days {
        summary.gaps.push(format!("{p}/{s}/{}", days[d]));
    }

    // One tax and one credit line for the month, no model, no scope.
    let cents = |d: Decimal| {
        let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        r.rescale(2);
        r
    };
    let mut extra: Vec<(&BillingProvider, &str, &str, Decimal)> = Vec::new();
    if let Some(u) = provider_usage.get("openai") {
        let bp = billing_provider("openai").expect("known");
        extra.push((bp, "Tax", "Sales tax 8.25%", cents(*u * dec("0.0825"))));
    }
    if let Some(u) = provider_usage.get("anthropic") {
        let bp = billing_provider("anthropic").expect("known");
        extra.push((bp, "Credit", "Promotional credit", -cents(*u * dec("0.05"))));
    }
    for (bp, category, description, amount) in extra {
        if amount.is_zero() {
            continue;
        }
        let amount_s = amount.to_string();
        let record: [&str; 30] = [
            bp.account_id,
            ORG_NAME,
            "USD",
            &bill_start,
            &bill_end,
            &bill_start,
            &bill_end,
            category,
            "",
            description,
            "One-Time",
            bp.provider_name,
            bp.provider_name,
            bp.provider_name,
            bp.service_name,
            "AI and Machine Learning",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            &amount_s,
            &amount_s,
            "",
            "",
        ];
        w.write_record(record).map_err(io)?;
        summary.lines += 1;
        summary.all_total += amount;
    }
    summary.all_total += summary.usage_total;
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(summary)
}

// ---------------------------------------------------------------------------
// The catalog
// ---------------------------------------------------------------------------

fn write_catalog(path: &Path) -> Result<(), String> {
    let models: Vec<serde_json::Value> = CATALOG
        .iter()
        .map(|m| {
            let mut price = serde_json::Map::new();
            price.insert("effective_from".into(), json!(PRICES_EFFECTIVE_FROM));
            price.insert("input".into(), json!(m.input));
            if let Some(p) = m.cached_input {
                price.insert("cached_input".into(), json!(p));
            }
            if let Some(p) = m.cache_write {
                price.insert("cache_write".into(), json!(p));
            }
            price.insert("output".into(), json!(m.output));
            json!({
                "provider": m.provider,
                "model": m.model,
                "aliases": m.aliases,
                "tier": m.tier,
                "context_window": m.context_window,
                "source": m.source,
                "refreshed": CATALOG_REFRESHED,
                "prices": [price],
            })
        })
        .collect();
    let catalog = json!({ "currency": "USD", "models": models });
    let mut text = serde_json::to_string_pretty(&catalog).map_err(|e| e.to_string())?;
    text.push('\n');
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// The policy
// ---------------------------------------------------------------------------

/// `chargeback.toml` for the month: sources in `out` (as an absolute path,
/// so the policy works from any folder), outputs under `out/closed/`, and
/// every team under `[teams]`, cycling through the three chargeback models.
fn write_policy(out: &Path, teams: &[Team], format: Format) -> Result<(), String> {
    let dir =
        fs::canonicalize(out).map_err(|e| format!("cannot resolve {}: {e}", out.display()))?;
    let dir = dir.to_str().ok_or("the output folder is not UTF-8")?;
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut text = format!(
        "# Written by `generate_month --policy` for the synthetic month in this folder.\n\n\
         [organization]\n\
         name = \"Example Corp AI Platform\"\n\
         address = [\"1 Main Street\", \"Springfield\"]\n\
         invoice_prefix = \"CB\"\n\
         currency = \"USD\"\n\
         payment_terms_days = 30\n\n\
         [sources]\n\
         requests = [{}]\n\
         billing = [{{ url = {}, format = \"focus\" }}]\n\
         catalog = {}\n\n\
         [output]\n\
         url = {}\n\n\
         [reconciliation]\n\
         unattributed = \"report\"\n\
         failed_requests = \"bill\"\n\
         min_coverage = \"0.98\"\n\
         max_price_variance = \"0.05\"\n\n\
         [chargeback]\n\
         model = \"tiered\"\n\
         platform_fee_rate = \"0.15\"\n\
         tier_mode = \"volume\"\n\
         tiers = [\n\
         \x20 {{ name = \"experimental\", up_to_mtokens = 10, markup = \"0.50\" }},\n\
         \x20 {{ name = \"standard\", up_to_mtokens = 100, markup = \"0.20\" }},\n\
         \x20 {{ name = \"enterprise\", markup = \"0.10\" }},\n\
         ]\n",
        quote(&format!("{dir}/requests/*.{}", format.extension())),
        quote(&format!("{dir}/billing/focus-{{period}}.csv")),
        quote(&format!("{dir}/model-catalog.json")),
        quote(&format!("{dir}/closed/{{period}}/")),
    );
    for (k, team) in teams.iter().enumerate() {
        text.push_str(&format!(
            "\n[teams.{}]\nname = {}\ncost_center = \"CC-{:04}\"\n",
            quote(&team.id),
            quote(&team.id),
            1000 + k
        ));
        text.push_str(match k % 3 {
            0 => "model = \"tiered\"\n",
            1 => "model = \"cost_plus\"\nmarkup = \"0.20\"\nfixed_fee = \"250.00\"\n",
            _ => "model = \"pass_through\"\n",
        });
    }
    let path = out.join("chargeback.toml");
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Parquet,
    Csv,
    Jsonl,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// How the Parquet `timestamp` column is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timestamps {
    /// RFC 3339 text with milliseconds, `Z` or `+02:00`.
    Text,
    /// `timestamp[ms, UTC]`, as Spark, DuckDB and pyarrow write an instant.
    Typed,
}

/// How the requests are shared among the teams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TeamWeights {
    /// The k-th team gets weight 1/k: a few large teams, a long tail.
    Zipf,
    /// Every team the same: about rows / teams requests each.
    Even,
}

/// What to generate; [`Args::new`] gives the command line's defaults.
#[derive(Clone, Debug)]
pub(crate) struct Args {
    pub out: PathBuf,
    pub rows: usize,
    pub teams: usize,
    pub seed: u64,
    pub year: i32,
    pub month: u32,
    pub files: usize,
    pub format: Format,
    pub timestamps: Timestamps,
    pub team_weights: TeamWeights,
    /// Also write `chargeback.toml`, a policy for the month naming every team.
    pub policy: bool,
    pub verbose: bool,
}

impl Args {
    pub(crate) fn new(out: impl Into<PathBuf>) -> Args {
        Args {
            out: out.into(),
            rows: 20_000,
            teams: 8,
            seed: 42,
            year: 2025,
            month: 1,
            files: 4,
            format: Format::Parquet,
            timestamps: Timestamps::Text,
            team_weights: TeamWeights::Zipf,
            policy: false,
            verbose: false,
        }
    }
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut out = None;
    let mut args = Args::new(PathBuf::new());
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        if flag == "--verbose" {
            args.verbose = true;
            continue;
        }
        if flag == "--policy" {
            args.policy = true;
            continue;
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or(format!("`{name}` needs a value"))?,
        };
        let number = |v: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("`{name}` wants a whole number, got `{v}`"))
        };
        match name.as_str() {
            "--out" => out = Some(PathBuf::from(value)),
            "--rows" => args.rows = number(&value)? as usize,
            "--teams" => args.teams = number(&value)? as usize,
            "--seed" => args.seed = number(&value)?,
            "--files" => args.files = number(&value)? as usize,
            "--period" => {
                let bad = || format!("`--period` wants YYYY-MM, got `{value}`");
                let (y, m) = value.split_once('-').ok_or_else(bad)?;
                args.year = y.parse().map_err(|_| bad())?;
                args.month = m.parse().map_err(|_| bad())?;
                if y.len() != 4 || m.len() != 2 || !(1..=12).contains(&args.month) {
                    return Err(bad());
                }
            }
            "--format" => {
                args.format = match value.as_str() {
                    "parquet" => Format::Parquet,
                    "csv" => Format::Csv,
                    "jsonl" | "ndjson" => Format::Jsonl,
                    other => {
                        return Err(format!(
                            "unknown `--format` `{other}`: parquet, csv or jsonl"
                        ));
                    }
                }
            }
            "--timestamps" => {
                args.timestamps = match value.as_str() {
                    "text" => Timestamps::Text,
                    "typed" => Timestamps::Typed,
                    other => {
                        return Err(format!("unknown `--timestamps` `{other}`: text or typed"));
                    }
                }
            }
            "--team-weights" => {
                args.team_weights = match value.as_str() {
                    "zipf" => TeamWeights::Zipf,
                    "even" => TeamWeights::Even,
                    other => {
                        return Err(format!("unknown `--team-weights` `{other}`: zipf or even"));
                    }
                }
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    args.out = out.ok_or("`--out DIR` is required")?;
    if args.rows == 0 || args.teams == 0 || args.files == 0 {
        return Err("`--rows`, `--teams` and `--files` must be at least 1".into());
    }
    if args.timestamps == Timestamps::Typed && args.format != Format::Parquet {
        return Err(
            "`--timestamps typed` needs `--format parquet` (CSV and JSON lines hold text)".into(),
        );
    }
    if args.files > args.rows {
        return Err("`--files` cannot exceed `--rows`".into());
    }
    Ok(Some(args))
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    /// Request-log rows, duplicates included.
    pub rows: usize,
    pub duplicates: usize,
    pub files: Vec<PathBuf>,
    /// Distinct requests (every row but the duplicates) and their tokens
    /// per class (input, cached input, cache write, output). Read by
    /// `tests/integration/scale.rs`, which includes this file.
    #[allow(dead_code)]
    pub requests: usize,
    #[allow(dead_code)]
    pub tokens: [u64; 4],
    pub bill_lines: usize,
    /// Billed usage, and with the tax and credit lines.
    pub usage_total: Decimal,
    pub all_total: Decimal,
}

/// Writes the month `args` describes.
pub(crate) fn generate(args: &Args) -> Result<Generated, String> {
    let first = NaiveDate::from_ymd_opt(args.year, args.month, 1).ok_or("invalid period")?;
    let next = if args.month == 12 {
        NaiveDate::from_ymd_opt(args.year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(args.year, args.month + 1, 1)
    }
    .ok_or("invalid period")?;
    if args.rows > u32::MAX as usize {
        return Err(format!("`--rows` can be at most {}", u32::MAX));
    }
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d < next).collect();
    let start = first.and_hms_opt(0, 0, 0).expect("midnight");
    let period = format!("{:04}-{:02}", args.year, args.month);

    let mut world_rng = Rng::new(args.seed, 1);
    let mut request_rng = Rng::new(args.seed, 2);
    let mut bill_rng = Rng::new(args.seed, 3);

    let teams = build_teams(args.teams, args.team_weights, &mut world_rng);
    let reqs = generate_requests(args, &teams, &days, &mut request_rng);

    fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let files = write_requests(&args.out.join("requests"), &reqs, &teams, start, args)?;
    let billing_dir = args.out.join("billing");
    fs::create_dir_all(&billing_dir)
        .map_err(|e| format!("cannot create {}: {e}", billing_dir.display()))?;
    let bill_path = billing_dir.join(format!("focus-{period}.csv"));
    let bill = write_bill(&bill_path, &reqs.unique, &teams, &days, next, &mut bill_rng)?;
    write_catalog(&args.out.join("model-catalog.json"))?;
    if args.policy {
        write_policy(&args.out, &teams, args.format)?;
    }

    if args.verbose {
        report_teams(&reqs.unique, &teams);
        eprintln!("coverage gaps on: {}", bill.gaps.join(", "));
    }
    let mut tokens = [0u64; 4];
    for r in &reqs.unique {
        for (t, n) in r.tokens().into_iter().enumerate() {
            tokens[t] += n;
        }
    }
    Ok(Generated {
        rows: reqs.rows.len(),
        duplicates: reqs.dups,
        requests: reqs.unique.len(),
        tokens,
        files,
        bill_lines: bill.lines,
        usage_total: bill.usage_total,
        all_total: bill.all_total,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let g = generate(args)?;
    println!(
        "wrote {} request rows ({} duplicates) in {} {} files and {} FOCUS lines to {}; \
         billed usage total USD {} (with tax and credit USD {})",
        g.rows,
        g.duplicates,
        g.files.len(),
        args.format.extension(),
        g.bill_lines,
        args.out.display(),
        g.usage_total,
        g.all_total
    );
    Ok(())
}

/// Per team: requests, tokens and cost at contracted prices (list prices
/// for providers without a bill), to help write budgets.
fn report_teams(reqs: &[Req], teams: &[Team]) {
    let mut by_team: BTreeMap<String, (u64, u64, Decimal)> = BTreeMap::new();
    for r in reqs {
        let route = r.route(teams);
        let spec = model_spec(route.provider, route.model);
        let tokens = r.tokens();
        let mut cost = Decimal::ZERO;
        for (ut, &n) in tokens.iter().enumerate() {
            let list = dec(list_price(spec, ut));
            let price =
                billing_provider(route.provider).map_or(list, |bp| contracted_price(bp, list));
            cost += Decimal::from(n) * price / million();
        }
        let team = if r.has(TAGGED) {
            teams[r.team as usize].id.clone()
        } else {
            request::UNTAGGED_TEAM.to_string()
        };
        let e = by_team.entry(team).or_default();
        e.0 += 1;
        e.1 += tokens.iter().sum::<u64>();
        e.2 += cost;
    }
    let mut rows: Vec<_> = by_team.into_iter().collect();
    rows.sort_by(|a, b| b.1.2.cmp(&a.1.2).then(a.0.cmp(&b.0)));
    eprintln!(
        "{:<14} {:>8} {:>14} {:>12}",
        "team", "requests", "tokens", "cost"
    );
    for (team, (n, tokens, cost)) in rows {
        eprintln!("{team:<14} {n:>8} {tokens:>14} {:>12}", cost.round_dp(2));
    }
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(None) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Some(args)) => match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("generate_month: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("generate_month: {e} (see --help)");
            ExitCode::from(2)
        }
    }
}

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
//! The same arguments always give byte-identical files: every random draw
//! comes from seeded SplitMix64 streams, floats only go through IEEE-exact
//! operations (`+ - * /`, rounding, and our own `exp` built from them, not
//! the platform libm), and every output is written in a fixed order. Money is computed with `rust_decimal` only;
//! floats are used solely to sample token counts and weights.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chargeback::money::Decimal;
use chargeback::schema::{focus, request, usage_type};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
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

fn build_teams(n: usize, rng: &mut Rng) -> Vec<Team> {
    (0..n)
        .map(|k| {
            // Zipf-like long tail: the k-th team gets weight 1/k.
            let weight = 1.0 / (k + 1) as f64;
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

#[derive(Clone)]
struct Req {
    id: String,
    /// Milliseconds since the start of the period, UTC.
    at_ms: i64,
    /// Written with a `+02:00` offset instead of `Z`.
    plus_two: bool,
    provider: &'static str,
    /// The name as logged (sometimes an alias).
    model_logged: &'static str,
    /// The catalog's canonical name.
    model: &'static str,
    scope: Option<&'static str>,
    team: Option<usize>,
    use_case: Option<&'static str>,
    input: i64,
    cached: i64,
    cache_write: i64,
    output: i64,
    error: bool,
}

const DAY_MS: i64 = 86_400_000;

const HOUR_WEIGHTS: [f64; 24] = [
    0.20, 0.15, 0.10, 0.10, 0.10, 0.15, 0.30, 0.50, 0.80, 1.00, 1.00, 1.00, 0.90, 1.00, 1.00, 1.00,
    0.95, 0.85, 0.70, 0.50, 0.40, 0.35, 0.30, 0.25,
];

fn generate_requests(
    args: &Args,
    teams: &[Team],
    days: &[NaiveDate],
    rng: &mut Rng,
) -> (Vec<Req>, usize) {
    let team_weights: Vec<f64> = teams.iter().map(|t| t.weight).collect();
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
    let mut reqs = Vec::with_capacity(args.rows);
    for i in 0..unique {
        let ti = rng.weighted(&team_weights);
        let team = &teams[ti];
        let route =
            team.routes[rng.weighted(&team.routes.iter().map(|r| r.weight).collect::<Vec<_>>())];
        let use_case = team.use_cases[rng.range(0, team.use_cases.len() as u64 - 1) as usize];
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

        let spec = model_spec(route.provider, route.model);
        let model_logged = match route.model {
            "gpt-4o" if rng.chance(0.25) => spec.aliases[0],
            "claude-3-5-sonnet" if rng.chance(0.10) => spec.aliases[0],
            _ => spec.model,
        };
        reqs.push(Req {
            id: format!(
                "req_{:016x}",
                mix64(args.seed.wrapping_mul(0x1_0000_0001) ^ i as u64)
            ),
            at_ms,
            plus_two,
            provider: route.provider,
            model_logged,
            model: route.model,
            scope: route.scope,
            team: tagged.then_some(ti),
            use_case: tagged.then_some(use_case.name),
            input,
            cached,
            cache_write,
            output,
            error,
        });
    }
    // Log files are written in time order, like a gateway's hourly dumps.
    reqs.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
    // Exact duplicates land anywhere, often in another file.
    for _ in 0..dups {
        let src = rng.range(0, unique as u64 - 1) as usize;
        let copy = reqs[src].clone();
        let pos = rng.range(0, reqs.len() as u64) as usize;
        reqs.insert(pos, copy);
    }
    (reqs, dups)
}

fn timestamp_text(start: NaiveDateTime, r: &Req) -> String {
    let t = start + Duration::milliseconds(r.at_ms);
    if r.plus_two {
        let local = t + Duration::hours(2);
        format!("{}+02:00", local.format("%Y-%m-%dT%H:%M:%S%.3f"))
    } else {
        format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S%.3f"))
    }
}

fn requests_frame(reqs: &[Req], teams: &[Team], start: NaiveDateTime) -> PolarsResult<DataFrame> {
    use request::*;
    let text = |name: &str, f: &dyn Fn(&Req) -> Option<String>| {
        Column::new(
            name.into(),
            reqs.iter().map(f).collect::<Vec<Option<String>>>(),
        )
    };
    let int = |name: &str, f: &dyn Fn(&Req) -> i64| {
        Column::new(name.into(), reqs.iter().map(f).collect::<Vec<i64>>())
    };
    let columns = vec![
        text(REQUEST_ID, &|r| Some(r.id.clone())),
        text(TIMESTAMP, &|r| Some(timestamp_text(start, r))),
        text(PROVIDER, &|r| Some(r.provider.to_string())),
        text(MODEL, &|r| Some(r.model_logged.to_string())),
        text(BILLING_SCOPE, &|r| r.scope.map(str::to_string)),
        text(TEAM, &|r| r.team.map(|t| teams[t].id.clone())),
        text(USE_CASE, &|r| r.use_case.map(str::to_string)),
        int(INPUT_TOKENS, &|r| r.input),
        int(CACHED_INPUT_TOKENS, &|r| r.cached),
        int(CACHE_WRITE_TOKENS, &|r| r.cache_write),
        int(OUTPUT_TOKENS, &|r| r.output),
        text(STATUS, &|r| {
            Some(if r.error { "error" } else { "ok" }.to_string())
        }),
    ];
    DataFrame::new(reqs.len(), columns)
}

fn write_requests(
    dir: &Path,
    reqs: &[Req],
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
    let mut written = Vec::new();
    for k in 0..args.files {
        let lo = k * reqs.len() / args.files;
        let hi = (k + 1) * reqs.len() / args.files;
        let mut df = requests_frame(&reqs[lo..hi], teams, start).map_err(|e| e.to_string())?;
        let path = dir.join(format!("part-{k:03}.{}", args.format.extension()));
        let file =
            File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut out = BufWriter::new(file);
        let res = match args.format {
            Format::Parquet => ParquetWriter::new(&mut out)
                .with_compression(ParquetCompression::Zstd(None))
                .with_row_group_size(Some(64 * 1024))
                .finish(&mut df)
                .map(|_| ()),
            Format::Csv => CsvWriter::new(&mut out)
                .include_header(true)
                .finish(&mut df),
            Format::Jsonl => JsonWriter::new(&mut out)
                .with_json_format(JsonFormat::JsonLines)
                .finish(&mut df),
        };
        res.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        out.flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
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
    days: &[NaiveDate],
    period_end: NaiveDate,
    rng: &mut Rng,
) -> Result<BillSummary, String> {
    // Logged tokens per cell, duplicates dropped, failed requests included
    // (the providers bill them).
    let mut seen = BTreeSet::new();
    let mut cells: BTreeMap<CellKey, u64> = BTreeMap::new();
    for r in reqs {
        if billing_provider(r.provider).is_none() || !seen.insert(r.id.as_str()) {
            continue;
        }
        let day = (r.at_ms / DAY_MS) as usize;
        let scope = r.scope.unwrap_or("");
        let tokens = [r.input, r.cached, r.cache_write, r.output];
        for (ut, &n) in tokens.iter().enumerate() {
            if n > 0 {
                *cells
                    .entry((r.provider, scope, day, r.model, ut))
                    .or_default() += n as u64;
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
// Command line
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Format {
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

struct Args {
    out: PathBuf,
    rows: usize,
    teams: usize,
    seed: u64,
    year: i32,
    month: u32,
    files: usize,
    format: Format,
    verbose: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut out = None;
    let mut args = Args {
        out: PathBuf::new(),
        rows: 20_000,
        teams: 8,
        seed: 42,
        year: 2025,
        month: 1,
        files: 4,
        format: Format::Parquet,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        if flag == "--verbose" {
            args.verbose = true;
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
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    args.out = out.ok_or("`--out DIR` is required")?;
    if args.rows == 0 || args.teams == 0 || args.files == 0 {
        return Err("`--rows`, `--teams` and `--files` must be at least 1".into());
    }
    if args.files > args.rows {
        return Err("`--files` cannot exceed `--rows`".into());
    }
    Ok(Some(args))
}

fn run(args: &Args) -> Result<(), String> {
    let first = NaiveDate::from_ymd_opt(args.year, args.month, 1).ok_or("invalid period")?;
    let next = if args.month == 12 {
        NaiveDate::from_ymd_opt(args.year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(args.year, args.month + 1, 1)
    }
    .ok_or("invalid period")?;
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d < next).collect();
    let start = first.and_hms_opt(0, 0, 0).expect("midnight");
    let period = format!("{:04}-{:02}", args.year, args.month);

    let mut world_rng = Rng::new(args.seed, 1);
    let mut request_rng = Rng::new(args.seed, 2);
    let mut bill_rng = Rng::new(args.seed, 3);

    let teams = build_teams(args.teams, &mut world_rng);
    let (reqs, dups) = generate_requests(args, &teams, &days, &mut request_rng);

    fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let files = write_requests(&args.out.join("requests"), &reqs, &teams, start, args)?;
    let billing_dir = args.out.join("billing");
    fs::create_dir_all(&billing_dir)
        .map_err(|e| format!("cannot create {}: {e}", billing_dir.display()))?;
    let bill_path = billing_dir.join(format!("focus-{period}.csv"));
    let bill = write_bill(&bill_path, &reqs, &days, next, &mut bill_rng)?;
    write_catalog(&args.out.join("model-catalog.json"))?;

    if args.verbose {
        report_teams(&reqs, &teams);
        eprintln!("coverage gaps on: {}", bill.gaps.join(", "));
    }
    println!(
        "wrote {} request rows ({} duplicates) in {} {} files and {} FOCUS lines to {}; \
         billed usage total USD {} (with tax and credit USD {})",
        reqs.len(),
        dups,
        files.len(),
        args.format.extension(),
        bill.lines,
        args.out.display(),
        bill.usage_total,
        bill.all_total
    );
    Ok(())
}

/// Per team: requests, tokens and cost at contracted prices (list prices
/// for providers without a bill), to help write budgets.
fn report_teams(reqs: &[Req], teams: &[Team]) {
    let mut seen = BTreeSet::new();
    let mut by_team: BTreeMap<String, (u64, u64, Decimal)> = BTreeMap::new();
    for r in reqs {
        if !seen.insert(r.id.as_str()) {
            continue;
        }
        let spec = model_spec(r.provider, r.model);
        let tokens = [r.input, r.cached, r.cache_write, r.output];
        let mut cost = Decimal::ZERO;
        for (ut, &n) in tokens.iter().enumerate() {
            let list = dec(list_price(spec, ut));
            let price = billing_provider(r.provider).map_or(list, |bp| contracted_price(bp, list));
            cost += Decimal::from(n as u64) * price / million();
        }
        let team = r
            .team
            .map_or(request::UNTAGGED_TEAM.to_string(), |t| teams[t].id.clone());
        let e = by_team.entry(team).or_default();
        e.0 += 1;
        e.1 += tokens.iter().sum::<i64>() as u64;
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

//! The policy file (`chargeback.toml`): parsed once, validated once.
//!
//! Key names are the contract of DESIGN §3.4. Unknown keys and bad values
//! are errors that name the key and its line. Money and rates are strings,
//! read as exact decimals.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::error::{Error, Location, Result};
use crate::fx::{FxTable, MAX_FX_RATE, Rate};
use crate::money::{Decimal, MAX_RATE};

/// Money and rates are TOML strings (`"0.20"`), read as exact decimals; a
/// TOML float is refused, because it has already lost exactness.
pub(crate) mod exact {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};

    use crate::money::{Decimal, parse_amount};

    struct Exact;

    impl Visitor<'_> for Exact {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal string such as \"0.20\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            parse_amount(v).map_err(E::custom)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            Err(E::custom(format!(
                "money and rates are strings: write `\"{v}\"`, not `{v}`"
            )))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Err(E::custom(format!(
                "money and rates are strings: write `\"{v}\"`, not `{v}`"
            )))
        }
    }

    pub(crate) fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(Exact)
    }

    pub(super) fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        d.deserialize_any(Exact).map(Some)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub organization: Organization,
    pub sources: Sources,
    #[serde(default)]
    pub output: Output,
    #[serde(default)]
    pub reconciliation: Reconciliation,
    #[serde(default)]
    pub chargeback: ChargebackDefaults,
    #[serde(default)]
    pub teams: BTreeMap<String, Team>,
    /// Retries, timeouts and object-store options (`[storage]`).
    #[serde(default)]
    pub storage: crate::load::store::StorageOptions,
    /// Costs spread over teams (`[[shared_costs]]`).
    #[serde(default)]
    pub shared_costs: Vec<toml::Spanned<SharedCost>>,
    /// Credits and charges for one team (`[[adjustments]]`).
    #[serde(default)]
    pub adjustments: Vec<toml::Spanned<Adjustment>>,
    /// The accounts of `journal.csv`; no journal without them.
    #[serde(default)]
    pub gl: Option<Gl>,
    /// Exchange rates of bill currencies into the organisation's
    /// (`[[fx]]`), effective-dated.
    #[serde(default)]
    pub fx: Vec<toml::Spanned<FxEntry>>,
    /// Where the heavy stage of the request logs runs (`[engine]`).
    #[serde(default)]
    pub engine: Engine,
}

/// `[engine]`: the request logs' row checks, de-duplication and rollup run
/// here (`local`, the default) or on a Spark cluster over Spark Connect.
/// Everything after the rollup runs in this binary either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    #[serde(default)]
    pub kind: EngineKind,
    /// `sc://host:port/;use_ssl=true`: the Spark Connect endpoint. A
    /// token never goes here: it is read from [`SPARK_TOKEN_ENV`].
    pub url: Option<String>,
    /// URL prefixes rewritten for the cluster's file systems, longest
    /// first (`"s3://" = "s3a://"` for Hadoop's S3 connector).
    #[serde(default)]
    pub path_map: BTreeMap<String, String>,
    /// Spark settings for the session (`spark.sql.shuffle.partitions`);
    /// recorded in the manifest.
    #[serde(default)]
    pub conf: BTreeMap<String, String>,
    /// The most duplicate and quarantined rows the cluster sends back to
    /// be listed one by one; beyond it they are counted, and the summary
    /// says how many were not listed.
    #[serde(default = "default_list_limit")]
    pub list_limit: u64,
}

/// The environment variable a Spark Connect token is read from.
pub const SPARK_TOKEN_ENV: &str = "CHARGEBACK_SPARK_TOKEN";

fn default_list_limit() -> u64 {
    100_000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    #[default]
    Local,
    SparkConnect,
}

/// `[[fx]]`: one unit of `from` is `rate` units of `to`, the
/// organisation's currency, from `effective_from` until the next rate of
/// `from`. A bill line in `from` is converted at the rate in force on its
/// charge day.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxEntry {
    pub from: String,
    pub to: String,
    #[serde(deserialize_with = "exact::decimal")]
    pub rate: Decimal,
    #[serde(deserialize_with = "policy_date")]
    pub effective_from: NaiveDate,
}

/// A date of the policy: `"2025-01-01"`, or TOML's own `2025-01-01`
/// (a bare date is as unambiguous as the string, so both are taken).
fn policy_date<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<NaiveDate, D::Error> {
    use serde::de::Error as _;
    let text = match toml::Value::deserialize(d)? {
        toml::Value::String(s) => s,
        toml::Value::Datetime(t) if t.time.is_none() && t.offset.is_none() => t.to_string(),
        other => {
            return Err(D::Error::custom(format!(
                "expected a date such as `\"2025-01-01\"`, found `{other}`"
            )));
        }
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        D::Error::custom(format!(
            "`{text}` is not a date; expected one such as `\"2025-01-01\"`"
        ))
    })
}

/// `[gl]`: the general-ledger accounts of `journal.csv`, one balanced
/// entry per invoice — the team's expense account debited on its cost
/// centre, the platform's accounts credited by what the lines are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gl {
    /// Debited with every invoice's total, unless its team names its own
    /// `gl_account`.
    pub expense_account: String,
    /// Credited with the usage cost the invoices recover.
    pub platform_account: String,
    /// Credited with markups, platform and fixed fees and outcome charges.
    pub markup_account: String,
    /// Credited with shared costs; `platform_account` when left out (a
    /// shared cost is recovered cost too).
    #[serde(default)]
    pub shared_cost_account: Option<String>,
    /// Credited with adjustments, the credit and debit notes of earlier
    /// months among them; `markup_account` when left out.
    #[serde(default)]
    pub adjustment_account: Option<String>,
    /// The platform's cost centre on the credit rows; empty when left out.
    #[serde(default)]
    pub cost_center: Option<String>,
    /// Where `[gl]` opens in the policy, set by [`Policy::parse`]: a team
    /// only the computed month shows (one in the logs, not in `[teams]`)
    /// is an error pointing here.
    #[serde(skip)]
    pub at: Option<Location>,
}

impl Gl {
    pub fn shared_cost_account(&self) -> &str {
        self.shared_cost_account
            .as_deref()
            .unwrap_or(&self.platform_account)
    }

    pub fn adjustment_account(&self) -> &str {
        self.adjustment_account
            .as_deref()
            .unwrap_or(&self.markup_account)
    }
}

/// A decimal of the policy, exact (written as a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Exact(#[serde(deserialize_with = "exact::decimal")] pub Decimal);

/// `[[shared_costs]]`: a pool spread over teams, one invoice line each.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedCost {
    pub name: String,
    /// A fixed monthly amount…
    #[serde(default, deserialize_with = "exact::option")]
    pub amount: Option<Decimal>,
    /// …or the bills' non-usage lines of one category (`bill:tax`).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub split: Split,
    /// The teams that carry it; default every invoiced team.
    #[serde(default)]
    pub teams: Option<Vec<String>>,
    /// `split = "fixed"`: each team's fraction, summing to exactly 1.
    #[serde(default)]
    pub weights: Option<BTreeMap<String, Exact>>,
}

impl SharedCost {
    /// The bill category a pool takes its amount from (`bill:tax` → tax).
    pub fn bill_category(&self) -> Option<crate::load::ingest::ChargeCategory> {
        let s = self.source.as_deref()?;
        crate::load::ingest::ChargeCategory::parse(s.strip_prefix("bill:")?)
    }
}

/// How a pool is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// In proportion to each team's usage cost.
    #[default]
    Proportional,
    /// The same share for every team.
    Even,
    /// By the pool's `weights`.
    Fixed,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Proportional => "proportional",
            Split::Even => "even",
            Split::Fixed => "fixed",
        }
    }
}

/// `[[adjustments]]`: a credit (negative) or charge for one team.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    pub team: String,
    #[serde(deserialize_with = "exact::decimal")]
    pub amount: Decimal,
    pub reason: String,
    #[serde(default)]
    pub reference: Option<String>,
}

/// What a budget is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetBasis {
    /// The invoice total (without notes of earlier months).
    #[default]
    Total,
    /// The usage cost alone.
    Usage,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    pub name: String,
    #[serde(default)]
    pub address: Vec<String>,
    #[serde(default = "default_prefix")]
    pub invoice_prefix: String,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default = "default_terms")]
    pub payment_terms_days: u32,
    /// Where questions about an invoice go: an e-mail address, printed on
    /// every invoice under "Questions and disputes".
    #[serde(default)]
    pub contact: Option<String>,
    /// How to dispute an invoice, in the issuer's words ("Reply within 10
    /// working days quoting the invoice number"), printed beside `contact`.
    #[serde(default)]
    pub dispute: Option<String>,
    /// The issuer's cost centre: the one every internal charge is credited
    /// to, printed beside the issuer. `journal.csv` credits it when `[gl]`
    /// names none.
    #[serde(default)]
    pub cost_center: Option<String>,
}

fn default_prefix() -> String {
    "CB".into()
}
fn default_currency() -> String {
    "USD".into()
}
fn default_terms() -> u32 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    pub requests: Vec<SourceSpec>,
    #[serde(default)]
    pub billing: Vec<BillingSpec>,
    pub catalog: String,
    /// Business outcomes exported by other systems (a ticket system's
    /// resolved tickets), counted for value-based charging.
    #[serde(default)]
    pub outcomes: Vec<OutcomeSpec>,
    /// How LiteLLM `SpendLogs` exports map onto the canonical log.
    #[serde(default)]
    pub litellm: LitellmOptions,
    /// Which OpenTelemetry attributes carry team, use case and scope.
    #[serde(default)]
    pub otel: OtelOptions,
}

/// `[sources.litellm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LitellmOptions {
    /// Hashed virtual key (`api_key`) → the provider billing scope it calls
    /// with (OpenAI project, Anthropic workspace, …).
    #[serde(default)]
    pub key_scopes: BTreeMap<String, String>,
    /// Which LiteLLM team field is the team id of the policy: `team_id`
    /// (default) or `team_alias` (when ids are generated UUIDs); each
    /// falls back to the other.
    #[serde(default)]
    pub team: LitellmTeam,
    /// The use case is the request tag `<use_case_tag>:<value>`, else the
    /// `spend_logs_metadata` key of that name.
    #[serde(default = "default_use_case_attribute")]
    pub use_case_tag: String,
}

impl Default for LitellmOptions {
    fn default() -> Self {
        LitellmOptions {
            key_scopes: BTreeMap::new(),
            team: LitellmTeam::default(),
            use_case_tag: default_use_case_attribute(),
        }
    }
}

/// `[sources.litellm] team`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LitellmTeam {
    #[default]
    TeamId,
    TeamAlias,
}

/// `[sources.otel]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelOptions {
    /// Span or resource attribute naming the team.
    #[serde(default = "default_team_attribute")]
    pub team_attribute: String,
    /// Span or resource attribute naming the use case.
    #[serde(default = "default_use_case_attribute")]
    pub use_case_attribute: String,
    /// Span or resource attribute naming the billing scope, if any.
    #[serde(default)]
    pub scope_attribute: Option<String>,
    /// Span or resource attribute naming the request's business outcome
    /// (value-based charging).
    #[serde(default = "default_outcome_attribute")]
    pub outcome_attribute: String,
    /// Span or resource attribute counting it (one when absent).
    #[serde(default = "default_outcome_count_attribute")]
    pub outcome_count_attribute: String,
    /// `gen_ai.operation.name` values that are billed model calls; spans of
    /// other operations (agents, tools, workflows: their usage repeats
    /// their children's) are skipped. A span without the attribute counts.
    #[serde(default = "default_otel_operations")]
    pub operations: Vec<String>,
}

fn default_otel_operations() -> Vec<String> {
    ["chat", "generate_content", "text_completion", "embeddings"]
        .map(String::from)
        .to_vec()
}

fn default_team_attribute() -> String {
    "team".into()
}
fn default_use_case_attribute() -> String {
    "use_case".into()
}
fn default_outcome_attribute() -> String {
    "outcome".into()
}
fn default_outcome_count_attribute() -> String {
    "outcome_count".into()
}

impl Default for OtelOptions {
    fn default() -> Self {
        OtelOptions {
            team_attribute: default_team_attribute(),
            use_case_attribute: default_use_case_attribute(),
            scope_attribute: None,
            outcome_attribute: default_outcome_attribute(),
            outcome_count_attribute: default_outcome_count_attribute(),
            operations: default_otel_operations(),
        }
    }
}

/// A request-log source: a URL (format from its extension) or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SourceSpec {
    Url(String),
    Table(SourceTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTable {
    pub url: String,
    /// What the log is; detected from the file when left out.
    #[serde(default)]
    pub format: Option<RequestFormat>,
    /// The file's container format when its extension does not say.
    #[serde(default)]
    pub file_format: Option<FileFormat>,
}

impl SourceSpec {
    pub fn url(&self) -> &str {
        match self {
            SourceSpec::Url(u) => u,
            SourceSpec::Table(t) => &t.url,
        }
    }
    pub fn format(&self) -> Option<RequestFormat> {
        match self {
            SourceSpec::Url(_) => None,
            SourceSpec::Table(t) => t.format,
        }
    }
    pub fn file_format(&self) -> Option<FileFormat> {
        match self {
            SourceSpec::Url(_) => None,
            SourceSpec::Table(t) => t.file_format,
        }
    }
}

/// An outcome source: a URL (format from its extension) or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OutcomeSpec {
    Url(String),
    Table(OutcomeTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeTable {
    pub url: String,
    /// The file's container format when its extension does not say.
    #[serde(default)]
    pub file_format: Option<FileFormat>,
}

impl OutcomeSpec {
    pub fn url(&self) -> &str {
        match self {
            OutcomeSpec::Url(u) => u,
            OutcomeSpec::Table(t) => &t.url,
        }
    }
    pub fn file_format(&self) -> Option<FileFormat> {
        match self {
            OutcomeSpec::Url(_) => None,
            OutcomeSpec::Table(t) => t.file_format,
        }
    }
}

/// The kinds of request log we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestFormat {
    /// Our canonical schema (DESIGN §3.1).
    Canonical,
    /// LiteLLM proxy `LiteLLM_SpendLogs` export.
    Litellm,
    /// OpenTelemetry GenAI spans, one JSON object per line.
    Otel,
}

impl RequestFormat {
    pub fn name(self) -> &'static str {
        match self {
            RequestFormat::Canonical => "canonical request log",
            RequestFormat::Litellm => "LiteLLM SpendLogs export",
            RequestFormat::Otel => "OpenTelemetry GenAI spans",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSpec {
    pub url: String,
    /// What the bill is; detected from the file when left out.
    #[serde(default)]
    pub format: Option<BillingFormat>,
    /// The file's container format when its extension does not say.
    #[serde(default)]
    pub file_format: Option<FileFormat>,
    /// The FOCUS column holding the billing scope.
    #[serde(default = "default_scope_column")]
    pub scope_column: String,
    /// A key of the FOCUS `Tags` column holding the billing scope; wins
    /// over `scope_column` on rows that carry it.
    #[serde(default)]
    pub scope_tag: Option<String>,
    /// FOCUS `ServiceName`s that count as LLM spend besides the AI services
    /// (`ServiceCategory = "AI and Machine Learning"`, the providers the
    /// catalog prices, rows whose model the catalog knows).
    #[serde(default)]
    pub include_services: Vec<String>,
    /// FOCUS `ServiceName`s that never count as LLM spend, even when they
    /// are AI services (e.g. `Amazon Rekognition`).
    #[serde(default)]
    pub exclude_services: Vec<String>,
}

fn default_scope_column() -> String {
    crate::schema::focus::SUB_ACCOUNT_ID.into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingFormat {
    /// FOCUS 1.x (CSV or Parquet): AWS CUR 2.0 FOCUS, Azure, GCP, or ours.
    Focus,
    /// OpenAI `/v1/organization/costs` JSON pages.
    OpenaiCosts,
    /// OpenAI dashboard cost CSV export.
    OpenaiCostCsv,
    /// Anthropic `/v1/organizations/cost_report` JSON pages.
    AnthropicCostReport,
    /// Anthropic console cost CSV export.
    AnthropicCostCsv,
    /// OpenAI `/v1/organization/usage/completions` JSON pages (tokens, no money).
    OpenaiUsage,
    /// Anthropic `/v1/organizations/usage_report/messages` JSON pages (tokens, no money).
    AnthropicUsageReport,
}

impl BillingFormat {
    /// Formats read from provider API pages (`has_more`, `next_page`).
    pub fn is_api_pages(self) -> bool {
        matches!(
            self,
            BillingFormat::OpenaiCosts
                | BillingFormat::AnthropicCostReport
                | BillingFormat::OpenaiUsage
                | BillingFormat::AnthropicUsageReport
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            BillingFormat::Focus => "FOCUS export",
            BillingFormat::OpenaiCosts => "OpenAI costs API page",
            BillingFormat::OpenaiCostCsv => "OpenAI dashboard cost CSV",
            BillingFormat::AnthropicCostReport => "Anthropic cost report",
            BillingFormat::AnthropicCostCsv => "Anthropic console cost CSV",
            BillingFormat::OpenaiUsage => "OpenAI usage API page",
            BillingFormat::AnthropicUsageReport => "Anthropic usage report",
        }
    }
}

/// A file's container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Parquet,
    Jsonl,
    /// One JSON document (API pages).
    Json,
}

impl FileFormat {
    /// The format an object's name implies, if any.
    pub fn from_name(name: &str) -> Option<FileFormat> {
        let n = name.to_ascii_lowercase();
        if n.ends_with(".csv") {
            Some(FileFormat::Csv)
        } else if n.ends_with(".parquet") || n.ends_with(".pq") {
            Some(FileFormat::Parquet)
        } else if n.ends_with(".jsonl") || n.ends_with(".ndjson") {
            Some(FileFormat::Jsonl)
        } else if n.ends_with(".json") {
            Some(FileFormat::Json)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "CSV",
            FileFormat::Parquet => "Parquet",
            FileFormat::Jsonl => "JSON lines",
            FileFormat::Json => "JSON",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    #[serde(default = "default_output_url")]
    pub url: String,
    /// A folder whose `invoice.html.hbs` / `summary.html.hbs` replace the
    /// built-in templates (branding).
    #[serde(default)]
    pub templates: Option<String>,
}

fn default_output_url() -> String {
    "out/{period}/".into()
}

impl Default for Output {
    fn default() -> Self {
        Output {
            url: default_output_url(),
            templates: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconciliation {
    #[serde(default)]
    pub unattributed: UnattributedPolicy,
    #[serde(default)]
    pub failed_requests: FailedRequests,
    #[serde(default = "default_min_coverage", deserialize_with = "exact::decimal")]
    pub min_coverage: Decimal,
    #[serde(default = "default_max_variance", deserialize_with = "exact::decimal")]
    pub max_price_variance: Decimal,
    /// A team whose share of failed requests is above it is an exception.
    #[serde(default, deserialize_with = "exact::option")]
    pub max_error_rate: Option<Decimal>,
}

fn default_min_coverage() -> Decimal {
    Decimal::new(98, 2)
}
fn default_max_variance() -> Decimal {
    Decimal::new(5, 2)
}

impl Default for Reconciliation {
    fn default() -> Self {
        Reconciliation {
            unattributed: UnattributedPolicy::Report,
            failed_requests: FailedRequests::Bill,
            min_coverage: default_min_coverage(),
            max_price_variance: default_max_variance(),
            max_error_rate: None,
        }
    }
}

/// What happens to billed cost no log explains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UnattributedPolicy {
    /// A named bucket on the finance summary.
    #[default]
    Report,
    /// Spread over the teams in proportion to their attributed cost.
    Proportional,
    /// Charged to one team.
    Team(String),
    /// Split over named teams by fixed shares summing to 1
    /// (`{ fixed = { a = "0.6", b = "0.4" } }`).
    Fixed(BTreeMap<String, Decimal>),
}

impl<'de> Deserialize<'de> for UnattributedPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Table(FixedShares),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FixedShares {
            fixed: BTreeMap<String, Exact>,
        }
        let s = match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected `report`, `proportional`, `team:<id>` or `{ fixed = { <team> = \"<share>\", … } }`",
            )
        })? {
            Raw::Name(s) => s,
            Raw::Table(t) => {
                return Ok(UnattributedPolicy::Fixed(
                    t.fixed.into_iter().map(|(k, v)| (k, v.0)).collect(),
                ));
            }
        };
        match s.as_str() {
            "report" => Ok(UnattributedPolicy::Report),
            "proportional" => Ok(UnattributedPolicy::Proportional),
            other => match other.strip_prefix("team:") {
                Some(team) if !team.is_empty() => Ok(UnattributedPolicy::Team(team.to_string())),
                _ => Err(serde::de::Error::custom(format!(
                    "unknown policy `{other}`, expected `report`, `proportional` or `team:<id>`"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedRequests {
    /// The provider charged them: they are usage like any other.
    #[default]
    Bill,
    /// Leave them out of the weights.
    Exclude,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargebackModel {
    PassThrough,
    CostPlus,
    Tiered,
    /// Charged per business outcome and per seat; the usage cost is shown
    /// beside the charge, not charged.
    ValueBased,
}

impl ChargebackModel {
    pub fn label(self) -> &'static str {
        match self {
            ChargebackModel::PassThrough => "pass-through",
            ChargebackModel::CostPlus => "cost-plus",
            ChargebackModel::Tiered => "tiered",
            ChargebackModel::ValueBased => "value-based",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMode {
    /// One markup for the whole volume, chosen by the volume.
    #[default]
    Volume,
    /// Each band's markup on the share of tokens in that band.
    Graduated,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    /// Upper bound, inclusive, in millions of tokens; none for the last tier.
    #[serde(default)]
    pub up_to_mtokens: Option<u64>,
    #[serde(deserialize_with = "exact::decimal")]
    pub markup: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargebackDefaults {
    #[serde(default = "default_model")]
    pub model: ChargebackModel,
    #[serde(
        default = "default_platform_fee_rate",
        deserialize_with = "exact::decimal"
    )]
    pub platform_fee_rate: Decimal,
    #[serde(default)]
    pub tier_mode: TierMode,
    #[serde(default = "default_tiers")]
    pub tiers: Vec<Tier>,
    #[serde(default, deserialize_with = "exact::decimal")]
    pub markup: Decimal,
    #[serde(default, deserialize_with = "exact::decimal")]
    pub fixed_fee: Decimal,
    #[serde(
        default = "default_alert_threshold",
        deserialize_with = "exact::decimal"
    )]
    pub alert_threshold: Decimal,
    #[serde(default)]
    pub budget_basis: BudgetBasis,
}

fn default_model() -> ChargebackModel {
    ChargebackModel::Tiered
}
fn default_platform_fee_rate() -> Decimal {
    Decimal::new(15, 2)
}
fn default_alert_threshold() -> Decimal {
    Decimal::new(8, 1)
}

/// The seed's tier table: ≤ 10M tokens 50%, ≤ 100M 20%, above 10%.
pub fn default_tiers() -> Vec<Tier> {
    vec![
        Tier {
            name: "experimental".into(),
            up_to_mtokens: Some(10),
            markup: Decimal::new(50, 2),
        },
        Tier {
            name: "standard".into(),
            up_to_mtokens: Some(100),
            markup: Decimal::new(20, 2),
        },
        Tier {
            name: "enterprise".into(),
            up_to_mtokens: None,
            markup: Decimal::new(10, 2),
        },
    ]
}

impl Default for ChargebackDefaults {
    fn default() -> Self {
        ChargebackDefaults {
            model: default_model(),
            platform_fee_rate: default_platform_fee_rate(),
            tier_mode: TierMode::Volume,
            tiers: default_tiers(),
            markup: Decimal::ZERO,
            fixed_fee: Decimal::ZERO,
            alert_threshold: default_alert_threshold(),
            budget_basis: BudgetBasis::Total,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub name: Option<String>,
    pub cost_center: Option<String>,
    pub model: Option<ChargebackModel>,
    #[serde(default, deserialize_with = "exact::option")]
    pub markup: Option<Decimal>,
    #[serde(default, deserialize_with = "exact::option")]
    pub fixed_fee: Option<Decimal>,
    #[serde(default, deserialize_with = "exact::option")]
    pub platform_fee_rate: Option<Decimal>,
    pub tier_mode: Option<TierMode>,
    pub tiers: Option<Vec<Tier>>,
    #[serde(default, deserialize_with = "exact::option")]
    pub budget: Option<Decimal>,
    #[serde(default, deserialize_with = "exact::option")]
    pub alert_threshold: Option<Decimal>,
    pub budget_basis: Option<BudgetBasis>,
    /// The account `journal.csv` debits for this team instead of
    /// `[gl] expense_account`.
    pub gl_account: Option<String>,
    /// `value_based`: the price of one outcome, by outcome name.
    #[serde(default)]
    pub outcome_rates: BTreeMap<String, Exact>,
    /// `value_based`: seats charged a month; the team's distinct users in
    /// the month's logs when left out.
    pub seats: Option<u64>,
    /// `value_based`: the price of one seat for the month.
    #[serde(default, deserialize_with = "exact::option")]
    pub seat_rate: Option<Decimal>,
}

/// A team's terms with the defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamTerms {
    pub id: String,
    pub name: String,
    pub cost_center: Option<String>,
    pub in_policy: bool,
    pub model: ChargebackModel,
    pub markup: Decimal,
    pub fixed_fee: Decimal,
    pub platform_fee_rate: Decimal,
    pub tier_mode: TierMode,
    pub tiers: Vec<Tier>,
    pub budget: Option<Decimal>,
    pub alert_threshold: Decimal,
    pub budget_basis: BudgetBasis,
    /// `value_based`: price per outcome, by outcome name.
    pub outcome_rates: BTreeMap<String, Decimal>,
    /// `value_based`: the seats stated; `None` counts distinct users.
    pub seats: Option<u64>,
    /// `value_based`: price per seat; `None` charges no seats.
    pub seat_rate: Option<Decimal>,
}

impl Policy {
    /// `[engine]`: a Spark engine needs its endpoint, and credentials stay
    /// out of the file (it is copied into every month's outputs).
    fn check_engine(&self, text: &str, uri: &str) -> Result<()> {
        let e = &self.engine;
        let at = || key_location(text, "[engine]", uri);
        match (e.kind, e.url.as_deref()) {
            (EngineKind::Local, _) => Ok(()),
            (EngineKind::SparkConnect, None) => Err(Error::policy(
                at(),
                "`[engine] kind = \"spark-connect\"` needs a `url`",
            )
            .with_hint("`url = \"sc://host:15002\"`, the cluster's Spark Connect endpoint")),
            (EngineKind::SparkConnect, Some(url)) if !url.starts_with("sc://") => {
                Err(Error::policy(
                    at(),
                    format!("`[engine] url` is `{url}`, expected a Spark Connect URL `sc://host:port`"),
                ))
            }
            (EngineKind::SparkConnect, Some(url))
                if url.to_ascii_lowercase().contains("token=") =>
            {
                Err(Error::policy(at(), "`[engine] url` holds a token")
                    .with_hint(format!(
                        "remove it from the policy (which is copied into the outputs) and set `{SPARK_TOKEN_ENV}` in the environment"
                    )))
            }
            (EngineKind::SparkConnect, Some(_)) if e.list_limit == 0 => Err(Error::policy(
                at(),
                "`[engine] list_limit` is 0: no duplicate or quarantined row could be named",
            )),
            (EngineKind::SparkConnect, Some(_)) => Ok(()),
        }
    }

    /// `[organization]`'s keys printed under "Questions and disputes" and
    /// beside the issuer: what a reader acts on, so an address that could
    /// not reach anyone, or a blank, is refused rather than printed.
    fn check_organization(&self, text: &str, uri: &str) -> Result<()> {
        let o = &self.organization;
        let at = |key: &str| table_key_location(text, "[organization]", key, uri);
        for (key, value) in [
            ("contact", &o.contact),
            ("dispute", &o.dispute),
            ("cost_center", &o.cost_center),
        ] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return Err(
                    Error::policy(at(key), format!("`organization.{key}` is empty"))
                        .with_hint("give a value, or leave the key out to print nothing"),
                );
            }
        }
        if let Some(contact) = &o.contact
            && !is_plausible_email(contact)
        {
            return Err(Error::policy(
                at("contact"),
                format!("`organization.contact` is `{contact}`, expected an e-mail address such as `finance@example.com`"),
            )
            .with_hint("invoices print it as where questions and disputes go"));
        }
        // The journal credits `[gl] cost_center`; an invoice naming
        // another would send the reader to the wrong ledger.
        if let (Some(org), Some(gl)) = (
            &o.cost_center,
            self.gl.as_ref().and_then(|g| g.cost_center.as_ref()),
        ) && org.trim() != gl.trim()
        {
            return Err(Error::policy(
                at("cost_center"),
                format!("`organization.cost_center` is `{org}` but `gl.cost_center` is `{gl}`"),
            )
            .with_hint("the issuer's cost centre is the one the journal credits: give one of them, or the same in both"));
        }
        Ok(())
    }

    /// Parses and validates a policy; `uri` names it in errors.
    pub fn parse(text: &str, uri: &str) -> Result<Policy> {
        let mut policy: Policy = toml::from_str(text).map_err(|e| {
            let at = match e.span() {
                Some(span) => line_col(text, span.start, uri),
                None => Location::file(uri),
            };
            Error::policy(at, e.message().trim().to_string())
                .with_hint("the policy's keys are in README.md, section “Policy (chargeback.toml)”")
        })?;
        policy.validate(text, uri)?;
        if let Some(gl) = &mut policy.gl {
            gl.at = Some(key_location(text, "[gl]", uri));
        }
        Ok(policy)
    }

    fn validate(&self, text: &str, uri: &str) -> Result<()> {
        let at = |key: &str| key_location(text, key, uri);
        let bad = |key: &str, msg: String| Error::policy(at(key), msg);
        let c = &self.chargeback;
        check_tiers(&c.tiers).map_err(|m| bad("tiers", m))?;
        check_rate("platform_fee_rate", c.platform_fee_rate)
            .map_err(|m| bad("platform_fee_rate", m))?;
        check_threshold(c.alert_threshold).map_err(|m| bad("alert_threshold", m))?;
        self.check_engine(text, uri)?;
        let r = &self.reconciliation;
        if r.min_coverage < Decimal::ZERO || r.min_coverage > Decimal::ONE {
            return Err(bad(
                "min_coverage",
                format!(
                    "`min_coverage` is `{}`, expected a ratio from 0 to 1",
                    r.min_coverage
                ),
            ));
        }
        if let Some(m) = r.max_error_rate
            && (m < Decimal::ZERO || m > Decimal::ONE)
        {
            return Err(bad(
                "max_error_rate",
                format!("`max_error_rate` is `{m}`, expected a ratio from 0 to 1"),
            )
            .with_hint("`\"0.05\"` is 5% of a team's requests"));
        }
        if r.max_price_variance < Decimal::ZERO {
            return Err(bad(
                "max_price_variance",
                format!(
                    "`max_price_variance` is `{}`, expected 0 or more",
                    r.max_price_variance
                ),
            ));
        }
        if let UnattributedPolicy::Fixed(shares) = &r.unattributed {
            if shares.is_empty() {
                return Err(bad(
                    "unattributed",
                    "`unattributed` has no fixed shares".into(),
                ));
            }
            for (t, w) in shares {
                if !self.teams.contains_key(t) {
                    return Err(bad(
                        "unattributed",
                        format!(
                            "`unattributed` gives a share to team `{t}`, which is not in [teams]"
                        ),
                    )
                    .with_hint(format!("add a [teams.{t}] table or fix the team id")));
                }
                if *w < Decimal::ZERO {
                    return Err(bad(
                        "unattributed",
                        format!(
                            "`unattributed` gives team `{t}` the share `{w}`, expected 0 or more"
                        ),
                    ));
                }
            }
            let sum: Decimal = shares.values().copied().sum();
            if sum != Decimal::ONE {
                return Err(bad(
                    "unattributed",
                    format!("the fixed shares of `unattributed` sum to {sum}, not 1"),
                )
                .with_hint("shares are fractions of each provider's unattributed cost and must sum to exactly 1"));
            }
        }
        if let UnattributedPolicy::Team(t) = &r.unattributed
            && !self.teams.contains_key(t)
        {
            return Err(bad(
                "unattributed",
                format!("`unattributed` names team `{t}`, which is not in [teams]"),
            )
            .with_hint(format!("add a [teams.{t}] table or choose another team")));
        }
        if !is_currency_code(&self.organization.currency) {
            return Err(bad(
                "currency",
                format!(
                    "`currency` is `{}`, expected a three-letter ISO 4217 code such as `USD`",
                    self.organization.currency
                ),
            ));
        }
        self.check_organization(text, uri)?;
        if self.sources.requests.is_empty() {
            return Err(bad(
                "requests",
                "`sources.requests` lists no request logs".into(),
            ));
        }
        for (id, team) in &self.teams {
            if id.trim().is_empty() {
                return Err(bad("teams", "a team id is empty".into()));
            }
            let key = |k: &str| format!("teams.{id}.{k}");
            if let Some(t) = &team.tiers {
                check_tiers(t)
                    .map_err(|m| bad(&format!("[teams.{id}]"), format!("{}: {m}", key("tiers"))))?;
            }
            // Rates are bounded too; amounts only by what an amount may be.
            for (name, v, rate) in [
                ("markup", team.markup, true),
                ("fixed_fee", team.fixed_fee, false),
                ("platform_fee_rate", team.platform_fee_rate, true),
                ("budget", team.budget, false),
            ] {
                let Some(v) = v else { continue };
                let checked = if rate {
                    check_rate(&key(name), v)
                } else {
                    check_amount(&key(name), v)
                };
                checked.map_err(|m| bad(&format!("[teams.{id}]"), m))?;
            }
            if let Some(th) = team.alert_threshold {
                check_threshold(th).map_err(|m| {
                    bad(
                        &format!("[teams.{id}]"),
                        format!("{}: {m}", key("alert_threshold")),
                    )
                })?;
            }
        }
        if c.model == ChargebackModel::ValueBased {
            return Err(bad(
                "[chargeback]",
                "`chargeback.model` is `value_based`, but outcome and seat rates are per team: a team only the logs name would be charged nothing".into(),
            )
            .with_hint("set `model = \"value_based\"` in each [teams.<id>] that has `outcome_rates` or `seat_rate`"));
        }
        for (id, team) in &self.teams {
            self.check_value_terms(id, team).map_err(|(m, hint)| {
                let e = bad(&format!("[teams.{id}]"), m);
                match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                }
            })?;
        }
        self.validate_gl(text, uri)?;
        self.validate_fx(text, uri)?;
        if c.markup < Decimal::ZERO || c.fixed_fee < Decimal::ZERO {
            return Err(bad(
                "markup",
                "chargeback `markup` and `fixed_fee` must be 0 or more".into(),
            ));
        }
        check_rate("markup", c.markup).map_err(|m| bad("markup", m))?;
        for pool in &self.shared_costs {
            self.check_pool(pool.get_ref()).map_err(|(m, hint)| {
                let e = Error::policy(line_col(text, pool.span().start, uri), m);
                match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                }
            })?;
        }
        for a in &self.adjustments {
            let at = || line_col(text, a.span().start, uri);
            let adj = a.get_ref();
            if !self.teams.contains_key(&adj.team) {
                return Err(Error::policy(
                    at(),
                    format!(
                        "adjustment `{}` is for team `{}`, which is not in [teams]",
                        adj.reason, adj.team
                    ),
                )
                .with_hint(format!(
                    "add a [teams.{}] table or fix the team id",
                    adj.team
                )));
            }
            if adj.amount.is_zero() {
                return Err(Error::policy(
                    at(),
                    format!(
                        "adjustment `{}` for `{}` has amount 0",
                        adj.reason, adj.team
                    ),
                )
                .with_hint("a credit is negative (`\"-100.00\"`), a charge positive"));
            }
            if adj.reason.trim().is_empty() {
                return Err(Error::policy(
                    at(),
                    format!("an adjustment for `{}` has no `reason`", adj.team),
                )
                .with_hint("the reason is printed on the invoice line"));
            }
        }
        Ok(())
    }

    /// A team's value-based keys: only under `value_based`, which needs
    /// something to charge; rates bounded so that a month of counts times
    /// a rate stays inside a `Decimal`.
    fn check_value_terms(
        &self,
        id: &str,
        team: &Team,
    ) -> std::result::Result<(), (String, Option<String>)> {
        let model = team.model.unwrap_or(self.chargeback.model);
        let keys: Vec<&str> = [
            (!team.outcome_rates.is_empty()).then_some("outcome_rates"),
            team.seats.is_some().then_some("seats"),
            team.seat_rate.is_some().then_some("seat_rate"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if model != ChargebackModel::ValueBased {
            if let Some(k) = keys.first() {
                return Err((
                    format!(
                        "`teams.{id}.{k}` is set but the team is charged `{}`, so it would be ignored",
                        model_name(model)
                    ),
                    Some(format!(
                        "add `model = \"value_based\"` to [teams.{id}], or remove `{k}`"
                    )),
                ));
            }
            return Ok(());
        }
        if team.outcome_rates.is_empty() && team.seat_rate.is_none() {
            return Err((
                format!(
                    "team `{id}` is charged `value_based` but has no `outcome_rates` and no `seat_rate`"
                ),
                Some(format!(
                    "add [teams.{id}.outcome_rates] (`resolved_ticket = \"0.50\"`) or `seat_rate = \"2.00\"`"
                )),
            ));
        }
        if team.seats.is_some() && team.seat_rate.is_none() {
            return Err((
                format!("`teams.{id}.seats` is set but `seat_rate` is not"),
                Some(format!(
                    "add `seat_rate = \"2.00\"` (per seat per month) to [teams.{id}]"
                )),
            ));
        }
        if let Some(seats) = team.seats
            && seats > MAX_SEATS
        {
            return Err((
                format!("`teams.{id}.seats` is {seats}, more than {MAX_SEATS}"),
                None,
            ));
        }
        let rates = team
            .outcome_rates
            .iter()
            .map(|(o, r)| (format!("teams.{id}.outcome_rates.{o}"), o.as_str(), r.0))
            .chain(
                team.seat_rate
                    .map(|r| (format!("teams.{id}.seat_rate"), "", r)),
            );
        for (key, outcome, rate) in rates {
            if key.contains(".outcome_rates.") && outcome.trim().is_empty() {
                return Err((
                    format!("`teams.{id}.outcome_rates` has an empty outcome name"),
                    None,
                ));
            }
            check_amount(&key, rate).map_err(|m| (m, None))?;
            if rate > MAX_UNIT_RATE {
                return Err((
                    format!("`{key}` is `{rate}`, more than {MAX_UNIT_RATE} for one unit"),
                    None,
                ));
            }
        }
        Ok(())
    }

    /// A pool's rules, checked: the message, and a hint when the fix is known.
    fn check_pool(&self, p: &SharedCost) -> std::result::Result<(), (String, Option<String>)> {
        let name = &p.name;
        match (&p.amount, &p.source) {
            (Some(_), Some(_)) => {
                return Err((
                    format!("shared cost `{name}` has both `amount` and `source`"),
                    Some(
                        "a pool is a fixed amount or a bill's lines of one category, not both"
                            .into(),
                    ),
                ));
            }
            (None, None) => {
                return Err((
                    format!("shared cost `{name}` has neither `amount` nor `source`"),
                    Some("give `amount = \"1200.00\"` or `source = \"bill:tax\"`".into()),
                ));
            }
            (Some(a), None) => {
                check_amount(&format!("shared cost `{name}` amount"), *a).map_err(|m| (m, None))?;
            }
            (None, Some(s)) => {
                if p.bill_category()
                    .is_none_or(|c| c == crate::load::ingest::ChargeCategory::Usage)
                {
                    return Err((
                        format!("shared cost `{name}` has source `{s}`"),
                        Some("expected `bill:credit`, `bill:tax`, `bill:fee`, `bill:adjustment` or `bill:purchase`".into()),
                    ));
                }
            }
        }
        if let Some(teams) = &p.teams {
            if teams.is_empty() {
                return Err((
                    format!("shared cost `{name}` lists no team to carry it"),
                    Some("leave `teams` out to spread it over every invoiced team".into()),
                ));
            }
            for t in teams {
                if !self.teams.contains_key(t) {
                    return Err((
                        format!("shared cost `{name}` names team `{t}`, which is not in [teams]"),
                        Some(format!("add a [teams.{t}] table or fix the team id")),
                    ));
                }
            }
        }
        match (p.split, &p.weights) {
            (Split::Fixed, None) => Err((
                format!("shared cost `{name}` is split `fixed` but has no `weights`"),
                Some("give `weights = { team = \"0.6\", other = \"0.4\" }`, summing to 1".into()),
            )),
            (Split::Fixed, Some(w)) => {
                for t in w.keys() {
                    if !self.teams.contains_key(t) {
                        return Err((
                            format!(
                                "shared cost `{name}` weighs team `{t}`, which is not in [teams]"
                            ),
                            Some(format!("add a [teams.{t}] table or fix the team id")),
                        ));
                    }
                    if p.teams.as_ref().is_some_and(|ts| !ts.contains(t)) {
                        return Err((
                            format!(
                                "shared cost `{name}` weighs team `{t}`, which is not in its `teams`"
                            ),
                            None,
                        ));
                    }
                }
                if let Some((t, v)) = w.iter().find(|(_, v)| v.0 < Decimal::ZERO) {
                    return Err((
                        format!(
                            "shared cost `{name}` weighs team `{t}` `{}`, expected 0 or more",
                            v.0
                        ),
                        None,
                    ));
                }
                let sum: Decimal = w.values().map(|v| v.0).sum();
                if sum != Decimal::ONE {
                    return Err((
                        format!("the weights of shared cost `{name}` sum to {sum}, not 1"),
                        Some(
                            "fixed weights are fractions of the pool and must sum to exactly 1"
                                .into(),
                        ),
                    ));
                }
                Ok(())
            }
            (split, Some(_)) => Err((
                format!(
                    "shared cost `{name}` has `weights` but is split `{}`",
                    split.as_str()
                ),
                Some("weights apply to `split = \"fixed\"` only".into()),
            )),
            (_, None) => Ok(()),
        }
    }

    /// `[gl]` and the teams' accounts: every value names an account or a
    /// cost centre, every team of the policy has a cost centre to debit,
    /// and no `gl_account` is set that no journal would use.
    fn validate_gl(&self, text: &str, uri: &str) -> Result<()> {
        let at = |key: &str| key_location(text, key, uri);
        let Some(gl) = &self.gl else {
            if let Some((id, _)) = self.teams.iter().find(|(_, t)| t.gl_account.is_some()) {
                return Err(Error::policy(
                    at(&format!("[teams.{id}]")),
                    format!(
                        "`teams.{id}.gl_account` is set but the policy has no [gl] table: no journal is written, so it would be ignored"
                    ),
                )
                .with_hint("add a [gl] table with the journal's accounts, or remove `gl_account`"));
            }
            return Ok(());
        };
        let accounts = [
            ("expense_account", Some(&gl.expense_account)),
            ("platform_account", Some(&gl.platform_account)),
            ("markup_account", Some(&gl.markup_account)),
            ("shared_cost_account", gl.shared_cost_account.as_ref()),
            ("adjustment_account", gl.adjustment_account.as_ref()),
        ];
        for (key, value) in accounts {
            if value.is_some_and(|v| v.trim().is_empty()) {
                return Err(Error::policy(at(key), format!("`gl.{key}` is empty"))
                    .with_hint("give the ledger account's number, such as `\"4900\"`, or leave an optional account out"));
            }
        }
        if gl.cost_center.as_ref().is_some_and(|c| c.trim().is_empty()) {
            return Err(Error::policy(at("[gl]"), "`gl.cost_center` is empty")
                .with_hint("give the platform's cost centre, or leave the key out"));
        }
        for (id, team) in &self.teams {
            if team
                .gl_account
                .as_ref()
                .is_some_and(|a| a.trim().is_empty())
            {
                return Err(Error::policy(
                    at(&format!("[teams.{id}]")),
                    format!("`teams.{id}.gl_account` is empty"),
                )
                .with_hint(format!(
                    "give the account to debit, or leave it out to debit `gl.expense_account` (`{}`)",
                    gl.expense_account
                )));
            }
        }
        // Every team without one at once: a policy gaining [gl] lacks
        // many cost centres, not one.
        let missing: Vec<&String> = self
            .teams
            .iter()
            .filter(|(_, t)| t.cost_center.as_ref().is_none_or(|c| c.trim().is_empty()))
            .map(|(id, _)| id)
            .collect();
        if let Some((first, rest)) = missing.split_first() {
            let message = if self.teams[*first].cost_center.is_some() {
                format!("`teams.{first}.cost_center` is empty")
            } else {
                format!("team `{first}` has no `cost_center`")
            };
            let also = if rest.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} {} none either",
                    rest.iter()
                        .map(|id| format!("[teams.{id}]"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if rest.len() == 1 { "has" } else { "have" }
                )
            };
            return Err(Error::policy(
                at(&format!("[teams.{first}]")),
                format!("{message}, and [gl] debits every invoice to its team's cost centre"),
            )
            .with_hint(format!(
                "add `cost_center = \"…\"` to [teams.{first}]{also}"
            )));
        }
        Ok(())
    }

    /// `[[fx]]`: each entry a rate from a currency code into the
    /// organisation's currency, above 0 and at most [`MAX_FX_RATE`], and
    /// one rate per currency and day, so that the rate in force on a day
    /// is never a choice.
    fn validate_fx(&self, text: &str, uri: &str) -> Result<()> {
        let invoiced = &self.organization.currency;
        let mut seen: BTreeMap<(&str, NaiveDate), Decimal> = BTreeMap::new();
        for entry in &self.fx {
            let at = || line_col(text, entry.span().start, uri);
            let fx = entry.get_ref();
            for (key, code) in [("from", &fx.from), ("to", &fx.to)] {
                if !is_currency_code(code) {
                    return Err(Error::policy(
                        at(),
                        format!(
                            "`fx.{key}` is `{code}`, expected a three-letter ISO 4217 code such as `EUR`"
                        ),
                    ));
                }
            }
            if fx.to != *invoiced {
                return Err(Error::policy(
                    at(),
                    format!(
                        "the rate from `{}` is to `{}`, but invoices are in `{invoiced}`",
                        fx.from, fx.to
                    ),
                )
                .with_hint(format!(
                    "`to` is the organisation's currency, which bills are converted into: `to = \"{invoiced}\"`"
                )));
            }
            if fx.from == fx.to {
                return Err(
                    Error::policy(at(), format!("a rate from `{}` to itself", fx.from)).with_hint(
                        "bills in the organisation's currency need no rate; remove the entry",
                    ),
                );
            }
            if fx.rate <= Decimal::ZERO || fx.rate > MAX_FX_RATE {
                return Err(Error::policy(
                    at(),
                    format!(
                        "the rate from `{}` of {} is `{}`, expected more than 0 and at most {MAX_FX_RATE}",
                        fx.from, fx.effective_from, fx.rate
                    ),
                )
                .with_hint(format!(
                    "the rate is how many `{}` one `{}` is worth, such as `\"1.0842\"`",
                    fx.to, fx.from
                )));
            }
            if let Some(other) = seen.insert((&fx.from, fx.effective_from), fx.rate) {
                return Err(Error::policy(
                    at(),
                    format!(
                        "`{}` has two rates from {}: `{other}` and `{}`",
                        fx.from, fx.effective_from, fx.rate
                    ),
                )
                .with_hint(
                    "keep one: a bill line is converted at the one rate in force on its day",
                ));
            }
        }
        Ok(())
    }

    /// The `[[fx]]` rates into the organisation's currency.
    pub fn fx_table(&self) -> FxTable {
        FxTable::new(
            &self.organization.currency,
            self.fx.iter().map(|e| {
                let e = e.get_ref();
                Rate {
                    from: e.from.clone(),
                    rate: e.rate,
                    effective_from: e.effective_from,
                }
            }),
        )
    }

    /// The terms for a team id, from `[teams.<id>]` or, for a team only
    /// seen in the logs, the defaults with the id as its name.
    pub fn terms(&self, id: &str) -> TeamTerms {
        let d = &self.chargeback;
        let t = self.teams.get(id);
        let team = t.cloned().unwrap_or_default();
        TeamTerms {
            id: id.to_string(),
            name: team.name.unwrap_or_else(|| id.to_string()),
            cost_center: team.cost_center,
            in_policy: t.is_some(),
            model: team.model.unwrap_or(d.model),
            markup: team.markup.unwrap_or(d.markup),
            fixed_fee: team.fixed_fee.unwrap_or(d.fixed_fee),
            platform_fee_rate: team.platform_fee_rate.unwrap_or(d.platform_fee_rate),
            tier_mode: team.tier_mode.unwrap_or(d.tier_mode),
            tiers: team.tiers.unwrap_or_else(|| d.tiers.clone()),
            budget: team.budget,
            alert_threshold: team.alert_threshold.unwrap_or(d.alert_threshold),
            budget_basis: team.budget_basis.unwrap_or(d.budget_basis),
            outcome_rates: team
                .outcome_rates
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            seats: team.seats,
            seat_rate: team.seat_rate,
        }
    }
}

/// The most seats a team may state (`seats`).
const MAX_SEATS: u64 = 10_000_000;

/// The largest price of one outcome or seat: a million. Counts of a month
/// (at most 2⁶⁴) times it stay inside a `Decimal`.
const MAX_UNIT_RATE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// A model as the policy spells it.
pub(crate) fn model_name(m: ChargebackModel) -> &'static str {
    match m {
        ChargebackModel::PassThrough => "pass_through",
        ChargebackModel::CostPlus => "cost_plus",
        ChargebackModel::Tiered => "tiered",
        ChargebackModel::ValueBased => "value_based",
    }
}

/// `local@domain.tld`, no spaces: enough to catch a name or a URL given
/// for an address, not a full RFC 5322 parse.
fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let refused = |c: char| c.is_whitespace() || c.is_control() || "<>,;:()[]\\\"".contains(c);
    !local.is_empty()
        && !s.chars().any(refused)
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// An ISO 4217 code as the policy must write it: three capital letters.
fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase())
}

fn check_rate(name: &str, v: Decimal) -> std::result::Result<(), String> {
    check_amount(name, v)?;
    if v > MAX_RATE {
        return Err(format!(
            "`{name}` is `{v}`, more than {MAX_RATE} ({}%); rates are fractions: `\"0.20\"` is 20%",
            MAX_RATE * Decimal::ONE_HUNDRED
        ));
    }
    Ok(())
}

fn check_amount(name: &str, v: Decimal) -> std::result::Result<(), String> {
    if v < Decimal::ZERO {
        return Err(format!("`{name}` is `{v}`, expected 0 or more"));
    }
    Ok(())
}

fn check_threshold(v: Decimal) -> std::result::Result<(), String> {
    if v <= Decimal::ZERO || v > Decimal::ONE {
        return Err(format!(
            "`alert_threshold` is `{v}`, expected a ratio above 0 and at most 1"
        ));
    }
    Ok(())
}

fn check_tiers(tiers: &[Tier]) -> std::result::Result<(), String> {
    if tiers.is_empty() {
        return Err("`tiers` is empty; give at least one tier".into());
    }
    let mut last = 0u64;
    for (i, t) in tiers.iter().enumerate() {
        if t.markup < Decimal::ZERO {
            return Err(format!(
                "tier `{}` has markup `{}`, expected 0 or more",
                t.name, t.markup
            ));
        }
        if t.markup > MAX_RATE {
            return Err(format!(
                "tier `{}` has markup `{}`, more than {MAX_RATE} ({}%); rates are fractions: `\"0.20\"` is 20%",
                t.name,
                t.markup,
                MAX_RATE * Decimal::ONE_HUNDRED
            ));
        }
        let is_last = i + 1 == tiers.len();
        match (t.up_to_mtokens, is_last) {
            (None, false) => {
                return Err(format!(
                    "tier `{}` has no `up_to_mtokens` but is not the last tier",
                    t.name
                ));
            }
            (Some(_), true) => {
                return Err(format!(
                    "the last tier `{}` has `up_to_mtokens`; the last tier must be open-ended",
                    t.name
                ));
            }
            (Some(b), false) => {
                if b <= last && i > 0 {
                    return Err(format!(
                        "tier `{}` ends at {b}M tokens, not above the tier before it ({last}M)",
                        t.name
                    ));
                }
                last = b;
            }
            (None, true) => {}
        }
    }
    Ok(())
}

/// `uri:line:column` of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize, uri: &str) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        uri: uri.to_string(),
        row: Some(line),
        column: Some(col.to_string()),
    }
}

/// The location of the line that sets `key` inside `table` (`[organization]`),
/// else where the table opens: a key name other tables use too
/// (`cost_center`) is found where it was meant.
fn table_key_location(text: &str, table: &str, key: &str, uri: &str) -> Location {
    let mut offset = 0;
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') {
            inside = t.starts_with(table);
        } else if inside
            && t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return line_col(text, offset + (line.len() - t.len()), uri);
        }
        offset += line.len();
    }
    key_location(text, table, uri)
}

/// The location of the first line that sets `key` (or opens the table),
/// for errors found after parsing.
fn key_location(text: &str, key: &str, uri: &str) -> Location {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let hit = if key.starts_with('[') {
            t.starts_with(key)
        } else {
            t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        };
        if hit {
            return line_col(text, offset + (line.len() - t.len()), uri);
        }
        offset += line.len();
    }
    Location::file(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[organization]
name = "Example Corp"

[sources]
requests = ["logs/*.csv"]
catalog = "catalog.json"
"#;

    #[test]
    fn defaults_are_the_seed_terms() {
        let p = Policy::parse(MINIMAL, "p.toml").unwrap();
        let t = p.terms("search");
        assert_eq!(t.name, "search");
        assert!(!t.in_policy);
        assert_eq!(t.model, ChargebackModel::Tiered);
        assert_eq!(t.platform_fee_rate.to_string(), "0.15");
        assert_eq!(t.tiers, default_tiers());
        assert_eq!(p.output.url, "out/{period}/");
        assert_eq!(p.reconciliation.min_coverage.to_string(), "0.98");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = format!("{MINIMAL}\n[teams.support]\nname = \"S\"\nbudgett = \"5\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("p.toml:11:1: unknown field `budgett`"),
            "{msg}"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn a_rate_written_as_a_percentage_is_refused() {
        let text = format!("{MINIMAL}\n[teams.support]\nmarkup = \"20\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:9:1: `teams.support.markup` is `20`, more than 10 (1000%); rates are fractions: `\"0.20\"` is 20%"
        );
        let text = format!("{MINIMAL}\n[teams.support]\nbudget = \"1e16\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert!(
            e.to_string().contains(
                "`1e16` is beyond ±1000000000000000, the largest amount chargeback adds up"
            ),
            "{e}"
        );
    }

    #[test]
    fn money_must_be_a_string() {
        let text = format!("{MINIMAL}\n[teams.support]\nmarkup = 0.2\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:10:10: money and rates are strings: write `\"0.2\"`, not `0.2`"
        );
    }

    #[test]
    fn tiers_must_ascend_and_end_open() {
        let text = format!(
            "{MINIMAL}\n[chargeback]\ntiers = [{{ name = \"a\", up_to_mtokens = 10, markup = \"0.5\" }}, {{ name = \"b\", up_to_mtokens = 5, markup = \"0.2\" }}]\n"
        );
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:10:1: the last tier `b` has `up_to_mtokens`; the last tier must be open-ended"
        );
    }

    const GL: &str = "\n[gl]\nexpense_account = \"6105\"\nplatform_account = \"4900\"\nmarkup_account = \"4910\"\n";

    #[test]
    fn gl_defaults_and_where_it_opens() {
        let text = format!(
            "{MINIMAL}{GL}\n[teams.support]\ncost_center = \"CC-4100\"\ngl_account = \"6105-20\"\n"
        );
        let p = Policy::parse(&text, "p.toml").unwrap();
        let gl = p.gl.as_ref().unwrap();
        assert_eq!(gl.shared_cost_account(), "4900");
        assert_eq!(gl.adjustment_account(), "4910");
        assert_eq!(gl.at.as_ref().unwrap().to_string(), "p.toml:9:1");
        assert_eq!(p.teams["support"].gl_account.as_deref(), Some("6105-20"));
        assert!(Policy::parse(MINIMAL, "p.toml").unwrap().gl.is_none());
    }

    #[test]
    fn with_gl_every_team_needs_a_cost_center() {
        let text = format!(
            "{MINIMAL}{GL}\n[teams.support]\ncost_center = \"CC-4100\"\n\n[teams.search]\nname = \"Search\"\n"
        );
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:17:1: team `search` has no `cost_center`, and [gl] debits every invoice to its team's cost centre"
        );
        assert_eq!(
            e.hint(),
            Some("add `cost_center = \"…\"` to [teams.search]")
        );
        let text = format!(
            "{MINIMAL}{GL}\n[teams.a]\ncost_center = \" \"\n[teams.b]\n[teams.c]\nname = \"C\"\n"
        );
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:14:1: `teams.a.cost_center` is empty, and [gl] debits every invoice to its team's cost centre"
        );
        assert_eq!(
            e.hint(),
            Some("add `cost_center = \"…\"` to [teams.a]; [teams.b], [teams.c] have none either")
        );
    }

    #[test]
    fn gl_account_without_gl_would_be_ignored() {
        let text = format!(
            "{MINIMAL}\n[teams.support]\ncost_center = \"CC-4100\"\ngl_account = \"6105-20\"\n"
        );
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:9:1: `teams.support.gl_account` is set but the policy has no [gl] table: no journal is written, so it would be ignored"
        );
        assert_eq!(
            e.hint(),
            Some("add a [gl] table with the journal's accounts, or remove `gl_account`")
        );
    }

    #[test]
    fn gl_accounts_are_not_empty_and_complete() {
        let text = format!("{MINIMAL}{GL}adjustment_account = \"\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:13:1: `gl.adjustment_account` is empty"
        );
        assert_eq!(
            e.hint(),
            Some(
                "give the ledger account's number, such as `\"4900\"`, or leave an optional account out"
            )
        );
        let text = format!("{MINIMAL}{GL}cost_center = \"\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(e.to_string(), "p.toml:9:1: `gl.cost_center` is empty");
        let text =
            format!("{MINIMAL}{GL}\n[teams.support]\ncost_center = \"CC\"\ngl_account = \"\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:14:1: `teams.support.gl_account` is empty"
        );
        assert_eq!(
            e.hint(),
            Some(
                "give the account to debit, or leave it out to debit `gl.expense_account` (`6105`)"
            )
        );
        let text =
            format!("{MINIMAL}\n[gl]\nexpense_account = \"6105\"\nplatform_account = \"4900\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(e.to_string(), "p.toml:9:1: missing field `markup_account`");
        let text = format!("{MINIMAL}{GL}revenue_account = \"4910\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p.toml:13:1: unknown field `revenue_account`, expected one of"),
            "{e}"
        );
    }

    #[test]
    fn organization_contact_dispute_and_cost_centre() {
        let with = |keys: &str| {
            let text = MINIMAL.replace(
                "name = \"Example Corp\"\n",
                &format!("name = \"Example Corp\"\n{keys}"),
            );
            Policy::parse(&text, "p.toml")
        };
        let p = with(
            "contact = \"finance@example.com\"\ndispute = \"Reply within 10 working days.\"\ncost_center = \"CC-9000\"\n",
        )
        .unwrap();
        let o = &p.organization;
        assert_eq!(o.contact.as_deref(), Some("finance@example.com"));
        assert_eq!(o.dispute.as_deref(), Some("Reply within 10 working days."));
        assert_eq!(o.cost_center.as_deref(), Some("CC-9000"));
        let none = Policy::parse(MINIMAL, "p.toml").unwrap().organization;
        assert_eq!(
            (none.contact, none.dispute, none.cost_center),
            (None, None, None)
        );

        let err = |keys: &str| {
            let e = with(keys).unwrap_err();
            (e.to_string(), e.hint().map(String::from))
        };
        for bad in [
            "finance",
            "finance@",
            "@example.com",
            "finance@example",
            "a b@example.com",
            "finance@example..com",
            "a@b@example.com",
            "https://example.com/finance",
        ] {
            assert_eq!(
                err(&format!("contact = \"{bad}\"\n")),
                (
                    format!(
                        "p.toml:4:1: `organization.contact` is `{bad}`, expected an e-mail address such as `finance@example.com`"
                    ),
                    Some("invoices print it as where questions and disputes go".into())
                ),
            );
        }
        assert!(with("contact = \"first.last+ai@finance.example.co.uk\"\n").is_ok());
        assert_eq!(
            err("dispute = \"  \"\n"),
            (
                "p.toml:4:1: `organization.dispute` is empty".into(),
                Some("give a value, or leave the key out to print nothing".into())
            )
        );
        assert!(
            err("phone = \"1\"\n")
                .0
                .starts_with("p.toml:4:1: unknown field `phone`")
        );
        // Found in its own table, not at a team's `cost_center`.
        let text = format!(
            "[teams.a]\ncost_center = \"CC-A\"\n\n[organization]\nname = \"E\"\ncost_center = \"CC-ORG\"\n\n\
             [sources]\nrequests = [\"l\"]\ncatalog = \"c\"\n{GL}cost_center = \"CC-PLAT\"\n"
        );
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:6:1: `organization.cost_center` is `CC-ORG` but `gl.cost_center` is `CC-PLAT`"
        );
        assert!(Policy::parse(&text.replace("CC-ORG", "CC-PLAT"), "p.toml").is_ok());
    }

    #[test]
    fn value_based_terms_are_checked_at_their_team() {
        let parse =
            |team: &str| Policy::parse(&format!("{MINIMAL}\n[teams.support]\n{team}"), "p.toml");
        let p = parse(
            "model = \"value_based\"\nseat_rate = \"2.00\"\n[teams.support.outcome_rates]\nresolved_ticket = \"0.50\"\n",
        )
        .unwrap();
        let t = p.terms("support");
        assert_eq!(t.model, ChargebackModel::ValueBased);
        assert_eq!(t.outcome_rates["resolved_ticket"].to_string(), "0.50");
        assert_eq!(
            (t.seats, t.seat_rate.map(|r| r.to_string())),
            (None, Some("2.00".into()))
        );
        let err = |team: &str| {
            let e = parse(team).unwrap_err();
            (e.to_string(), e.hint().map(String::from))
        };
        assert_eq!(
            err("model = \"value_based\"\n"),
            (
                "p.toml:9:1: team `support` is charged `value_based` but has no `outcome_rates` and no `seat_rate`".into(),
                Some("add [teams.support.outcome_rates] (`resolved_ticket = \"0.50\"`) or `seat_rate = \"2.00\"`".into())
            )
        );
        assert_eq!(
            err("model = \"cost_plus\"\nseat_rate = \"2.00\"\n"),
            (
                "p.toml:9:1: `teams.support.seat_rate` is set but the team is charged `cost_plus`, so it would be ignored".into(),
                Some("add `model = \"value_based\"` to [teams.support], or remove `seat_rate`".into())
            )
        );
        // The default model is tiered: rates without a model are ignored too.
        assert_eq!(
            err("[teams.support.outcome_rates]\nresolved_ticket = \"0.50\"\n").0,
            "p.toml:9:1: `teams.support.outcome_rates` is set but the team is charged `tiered`, so it would be ignored"
        );
        assert_eq!(
            err("model = \"value_based\"\nseats = 40\n[teams.support.outcome_rates]\nx = \"1\"\n"),
            (
                "p.toml:9:1: `teams.support.seats` is set but `seat_rate` is not".into(),
                Some("add `seat_rate = \"2.00\"` (per seat per month) to [teams.support]".into())
            )
        );
        assert_eq!(
            err("model = \"value_based\"\n[teams.support.outcome_rates]\nresolved_ticket = \"-0.50\"\n").0,
            "p.toml:9:1: `teams.support.outcome_rates.resolved_ticket` is `-0.50`, expected 0 or more"
        );
        assert_eq!(
            err("model = \"value_based\"\nseat_rate = \"2000000\"\n").0,
            "p.toml:9:1: `teams.support.seat_rate` is `2000000`, more than 1000000 for one unit"
        );
        assert_eq!(
            err("model = \"value_based\"\n[teams.support.outcome_rates]\nresolved_ticket = 0.5\n")
                .0,
            "p.toml:12:19: money and rates are strings: write `\"0.5\"`, not `0.5`"
        );
        let e = Policy::parse(
            &format!("{MINIMAL}\n[chargeback]\nmodel = \"value_based\"\n"),
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:9:1: `chargeback.model` is `value_based`, but outcome and seat rates are per team: a team only the logs name would be charged nothing"
        );
        assert_eq!(
            e.hint(),
            Some(
                "set `model = \"value_based\"` in each [teams.<id>] that has `outcome_rates` or `seat_rate`"
            )
        );
    }

    #[test]
    fn unattributed_team_must_exist() {
        let text = format!("{MINIMAL}\n[reconciliation]\nunattributed = \"team:platform\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:10:1: `unattributed` names team `platform`, which is not in [teams]"
        );
    }

    #[test]
    fn unattributed_fixed_shares_are_checked() {
        let parse = |shares: &str| {
            Policy::parse(
                &format!(
                    "{MINIMAL}\n[reconciliation]\nunattributed = {{ fixed = {{ {shares} }} }}\n[teams.a]\n[teams.b]\n"
                ),
                "p.toml",
            )
        };
        let p = parse("a = \"0.6\", b = \"0.4\"").unwrap();
        assert_eq!(
            p.reconciliation.unattributed,
            UnattributedPolicy::Fixed(
                [
                    ("a".into(), Decimal::new(6, 1)),
                    ("b".into(), Decimal::new(4, 1))
                ]
                .into()
            )
        );
        assert_eq!(
            parse("a = \"0.6\", b = \"0.3\"").unwrap_err().report(),
            "error: p.toml:10:1: the fixed shares of `unattributed` sum to 0.9, not 1\n\
             hint: shares are fractions of each provider's unattributed cost and must sum to exactly 1\n"
        );
        assert_eq!(
            parse("a = \"0.6\", z = \"0.4\"").unwrap_err().report(),
            "error: p.toml:10:1: `unattributed` gives a share to team `z`, which is not in [teams]\n\
             hint: add a [teams.z] table or fix the team id\n"
        );
        assert!(
            parse("a = 0.6")
                .unwrap_err()
                .to_string()
                .contains("expected `report`, `proportional`, `team:<id>` or `{ fixed = { <team> = \"<share>\", … } }`")
        );
    }

    #[test]
    fn fx_rates_are_read_exactly_with_their_dates() {
        let text = format!(
            "{MINIMAL}\n[[fx]]\nfrom = \"EUR\"\nto = \"USD\"\nrate = \"1.0842\"\neffective_from = \"2025-01-01\"\n\
             [[fx]]\nfrom = \"EUR\"\nto = \"USD\"\nrate = \"1.0910\"\neffective_from = 2025-01-15\n"
        );
        let p = Policy::parse(&text, "p.toml").unwrap();
        let t = p.fx_table();
        let day = |d| NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
        assert_eq!(
            t.rate_on("EUR", day(14)).unwrap().rate.to_string(),
            "1.0842"
        );
        assert_eq!(
            t.rate_on("EUR", day(15)).unwrap().rate.to_string(),
            "1.0910"
        );
        assert_eq!(t.currency(), "USD");
    }

    #[test]
    fn fx_entries_are_checked() {
        let parse = |entry: &str| {
            Policy::parse(&format!("{MINIMAL}\n[[fx]]\n{entry}\n"), "p.toml")
                .unwrap_err()
                .report()
        };
        let entry = |from: &str, to: &str, rate: &str, day: &str| {
            format!("from = \"{from}\"\nto = \"{to}\"\nrate = {rate}\neffective_from = {day}")
        };
        assert_eq!(
            parse(&entry("EUR", "EUR", "\"0.92\"", "\"2025-01-01\"")),
            "error: p.toml:9:1: the rate from `EUR` is to `EUR`, but invoices are in `USD`\n\
             hint: `to` is the organisation's currency, which bills are converted into: `to = \"USD\"`\n"
        );
        assert_eq!(
            parse(&entry("USD", "USD", "\"1\"", "\"2025-01-01\"")),
            "error: p.toml:9:1: a rate from `USD` to itself\n\
             hint: bills in the organisation's currency need no rate; remove the entry\n"
        );
        assert_eq!(
            parse(&entry("eur", "USD", "\"1.08\"", "\"2025-01-01\"")),
            "error: p.toml:9:1: `fx.from` is `eur`, expected a three-letter ISO 4217 code such as `EUR`\n"
        );
        assert_eq!(
            parse(&entry("EUR", "USD", "\"0\"", "\"2025-01-01\"")),
            "error: p.toml:9:1: the rate from `EUR` of 2025-01-01 is `0`, expected more than 0 and at most 1000000\n\
             hint: the rate is how many `USD` one `EUR` is worth, such as `\"1.0842\"`\n"
        );
        assert!(
            parse(&entry("EUR", "USD", "\"1e7\"", "\"2025-01-01\""))
                .contains("is `10000000`, expected more than 0 and at most 1000000"),
        );
        assert_eq!(
            parse(&entry("EUR", "USD", "1.08", "\"2025-01-01\"")),
            "error: p.toml:12:8: money and rates are strings: write `\"1.08\"`, not `1.08`\n\
             hint: the policy's keys are in README.md, section “Policy (chargeback.toml)”\n"
        );
        assert!(
            parse(&entry("EUR", "USD", "\"1.08\"", "\"2025-13-01\""))
                .contains("`2025-13-01` is not a date; expected one such as `\"2025-01-01\"`"),
        );
        assert!(
            parse(&entry("EUR", "USD", "\"1.08\"", "2025-01-01T00:00:00Z"))
                .contains("expected a date such as `\"2025-01-01\"`, found `2025-01-01T00:00:00Z`"),
        );
        assert!(
            parse("from = \"EUR\"\nto = \"USD\"\nrate = \"1.08\"\n")
                .contains("missing field `effective_from`")
        );
        assert!(
            parse(&format!(
                "{}\nday = \"x\"",
                entry("EUR", "USD", "\"1\"", "\"2025-01-01\"")
            ))
            .contains("unknown field `day`")
        );
    }

    #[test]
    fn one_rate_per_currency_and_day() {
        let text = format!(
            "{MINIMAL}\n[[fx]]\nfrom = \"EUR\"\nto = \"USD\"\nrate = \"1.08\"\neffective_from = \"2025-01-01\"\n\n\
             [[fx]]\nfrom = \"EUR\"\nto = \"USD\"\nrate = \"1.09\"\neffective_from = \"2025-01-01\"\n"
        );
        assert_eq!(
            Policy::parse(&text, "p.toml").unwrap_err().report(),
            "error: p.toml:15:1: `EUR` has two rates from 2025-01-01: `1.08` and `1.09`\n\
             hint: keep one: a bill line is converted at the one rate in force on its day\n"
        );
    }
}

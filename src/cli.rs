//! The command line: clap structures holding what was typed, no I/O.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "chargeback",
    version,
    about = "Close a month of LLM spend: reconcile provider bills with tagged request logs and invoice every team to the cent",
    long_about = None,
    after_help = "Exit codes: 0 ok · 1 bad input or policy (nothing published) · 2 usage, or a closed month that would change without --force · 3 storage · 4 a --fail-on gate tripped (outputs published)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Close a month: reconcile, attribute, charge back and publish invoices
    Run(RunArgs),
    /// Check the policy and every input of a month; write nothing
    ///
    /// Loads and computes the month exactly as `run` does, renders every HTML
    /// document and compiles each PDF template against the month's data (the
    /// summary, and the invoice with the most lines) without typesetting a PDF
    /// per team. Exits as `run` would: 1 on bad input, a bad policy or a
    /// template error.
    Validate(ValidateArgs),
    /// Rerun a published month from its manifest and say whether every
    /// output is the same
    ///
    /// Reads the manifest's policy, catalog and inputs (the recorded
    /// versions where the store keeps versions, else the current bytes,
    /// checked against their sha256), computes and renders the month again
    /// with the manifest's issue date, and compares every output's sha256.
    /// Writes nothing. Exits 0 when identical; 1 naming each input that
    /// changed or is gone, or each output that would differ (and, for
    /// invoices.json, the first team and field).
    Verify(VerifyArgs),
    /// Show where an invoice line's amount came from; write nothing
    ///
    /// Loads and computes the month exactly as `run` does and prints, for
    /// line N of the team's invoice (every line without `--line`): a usage
    /// line's billed lines (source `file:row`, day, usage type, line cost,
    /// the team's weight of the line's total weight, its exact share) or
    /// catalog prices, the exact sum, the rounded amount and what rounding
    /// changed; a markup or fee line's basis, rate and tier. Long lists are
    /// cut short on a terminal; `--json` is always complete, and
    /// allocations.parquet holds the same parts for every line. Exits 2 for
    /// a team without an invoice or a line it does not have.
    Explain(ExplainArgs),
    /// Re-rate a closed month with its inputs as they are now and issue a
    /// credit or debit note per team whose total changed
    ///
    /// Late usage, a corrected bill or a price fix: the whole month is
    /// computed again, every rule and tier included, and compared with the
    /// month as last issued (the invoices, or the last amendment). The
    /// published documents are never rewritten: the notes go to
    /// `amendments/<n>/` under the month's folder (notes.json, one HTML and
    /// one PDF per note, the re-rated invoices.json, its own manifest), and
    /// the month's manifest lists the amendment. The next month's run
    /// carries each note once, as an adjustment line. Nothing changed:
    /// nothing is written.
    Amend(AmendArgs),
    /// Recompute a month under a what-if scenario and compare each team's
    /// cost with the month as run
    ///
    /// Loads the month once and computes it twice with the same stages as
    /// `run`: as it is, and with the scenario's changes — traffic moved to
    /// another model (priced from the catalog, token counts kept), caching
    /// at a hit rate, other chargeback terms, a hypothetical team's planned
    /// tokens. Writes compare.json (per team `current_cost`,
    /// `calculated_monthly_cost`, `comparison_delta`, `user_selections`),
    /// compare.html, and a DRAFT invoice per hypothetical team, under
    /// `<month>/compare/<scenario>/` or `--out`. Publishes nothing of the
    /// month itself. Examples: fixtures/scenarios/.
    Compare(CompareArgs),
    /// Build or update the price catalog (model-catalog.json)
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub month: MonthArgs,

    /// The scenario file (TOML: [[move]], [[cache]], [[plan]],
    /// [chargeback], [teams.<id>])
    #[arg(long, short = 's', value_name = "FILE")]
    pub scenario: String,

    /// Where to write compare.json, compare.html and drafts; default
    /// `compare/<scenario name>/` under the month's [output] url
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<String>,
}

#[derive(Debug, Args)]
pub struct AmendArgs {
    /// The policy file (chargeback.toml)
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: String,

    /// The closed month to amend, as YYYY-MM
    #[arg(long, short = 'p', value_name = "YYYY-MM")]
    pub period: String,

    /// The issue date of the notes, as YYYY-MM-DD (required: a note is
    /// dated, and chargeback never reads the clock)
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,

    /// Why the month is amended, printed on every note
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "late usage, corrected bills or prices"
    )]
    pub reason: String,

    /// The month's published folder or URL, overriding [output] url
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<String>,

    /// Print nothing but errors (and no progress bars)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Print each stage's wall time to stderr
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Turn LiteLLM's public price map into a catalog, or into new price
    /// versions of an existing catalog
    ///
    /// FILE is LiteLLM's model_prices_and_context_window.json (from the
    /// BerriAI/litellm repository). Chat, completion and responses models
    /// with an input and an output price per token are imported, converted
    /// exactly to prices per 1M tokens (2.5e-06 per token is 2.5); every
    /// other entry (sample_spec, embedding, image, audio, rerank, … modes,
    /// models without both prices, models priced at zero) is skipped and
    /// counted on stderr. Providers get chargeback's ids (bedrock →
    /// aws-bedrock, azure → azure-openai, vertex_ai-* and gemini →
    /// vertex-ai); a provider prefix of the model name is dropped and the
    /// LiteLLM name kept as an alias. When two entries name the same model,
    /// the one without a prefix is kept (else the first by name); the other
    /// becomes an alias when its prices are the same, and is skipped when
    /// they are not.
    ///
    /// Without --merge, the catalog holds one price set per model, in force
    /// from --effective-from. With --merge, the existing catalog keeps its
    /// history, its own models, and their aliases, tier and context window:
    /// a model whose price in force on --effective-from differs gets a new
    /// price set from that day (one already on that day is replaced; later
    /// ones are kept and still take over on their dates), an unchanged
    /// model gets nothing, and a model new to the catalog is added. Models
    /// are matched by name or alias, in any case.
    ///
    /// The catalog goes to stdout, or to --out; the report goes to stderr.
    /// Models are sorted by provider and model, so the same inputs give the
    /// same bytes.
    ImportLitellm(ImportLitellmArgs),
}

#[derive(Debug, Args)]
pub struct ImportLitellmArgs {
    /// LiteLLM's model_prices_and_context_window.json (a path or URL)
    #[arg(value_name = "FILE")]
    pub file: String,

    /// The day LiteLLM's prices take effect, as YYYY-MM-DD. Required: a
    /// price list without a date would price past months too
    #[arg(long, value_name = "DATE")]
    pub effective_from: String,

    /// An existing catalog to add LiteLLM's prices to, keeping its history
    #[arg(long, value_name = "CATALOG")]
    pub merge: Option<String>,

    /// Write the catalog to this file or URL instead of stdout (it may be
    /// the --merge catalog itself)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<String>,

    /// Print nothing but errors
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub month: MonthArgs,

    /// The team whose invoice to explain (its id, as in [teams.<id>])
    #[arg(long, short = 't', value_name = "TEAM")]
    pub team: String,

    /// The line's number on the invoice, from 1 (ledger.csv's `line`);
    /// default: every line
    #[arg(long, short = 'l', value_name = "N")]
    pub line: Option<u32>,

    /// Print the explanation as JSON, complete, money as decimal strings
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The manifest.json of a published month
    #[arg(long, short = 'm', value_name = "URL")]
    pub manifest: String,

    /// Print nothing but errors (and no progress bars)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Print each stage's wall time to stderr
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Args)]
pub struct MonthArgs {
    /// The policy file (chargeback.toml)
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: String,

    /// The month to close, as YYYY-MM; or `previous`, the month before
    /// --as-of's (before today's, in UTC, without it) for a scheduled job —
    /// the only use of the clock: every date printed comes from the period
    /// or --as-of
    #[arg(long, short = 'p', value_name = "YYYY-MM")]
    pub period: String,

    /// The date the run speaks for (issue date, budget projection), as
    /// YYYY-MM-DD; default: the first day after the period
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,

    /// Print nothing but errors (and no progress bars)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Print each stage's wall time to stderr
    #[arg(long)]
    pub timings: bool,
}

/// What `--json` says, for `run` and `validate`.
const JSON_HELP: &str = "Print the summary as one JSON object on stdout instead of the report \
(totals as decimal strings, ties, input counts, exceptions by kind, budget alerts, gates tripped, \
exit code and reason); an error too, with its message and hint (also on stderr)";

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub month: MonthArgs,

    #[arg(long, help = JSON_HELP)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub month: MonthArgs,

    #[arg(long, help = JSON_HELP)]
    pub json: bool,

    /// Output folder or URL, overriding [output] url in the policy
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<String>,

    /// Exit 4 after publishing when exceptions were found or a budget is
    /// critical (repeatable)
    #[arg(long, value_enum, value_name = "GATE")]
    pub fail_on: Vec<Gate>,

    /// Replace a closed month whose published outputs differ from this
    /// run's (a rerun that gives the same bytes needs no force)
    #[arg(long)]
    pub force: bool,

    /// Read exactly the objects a published manifest records (same
    /// versions, same bytes), for an auditor's rerun
    #[arg(long, value_name = "URL")]
    pub pin_manifest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Gate {
    /// Any reconciliation exception (exceptions.csv not empty)
    Exceptions,
    /// Any team whose month-end spend (actual once the month is closed,
    /// projected mid-month) is above its budget
    Budget,
}

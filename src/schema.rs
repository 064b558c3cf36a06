//! Canonical column and field names: the only place they are spelled.
//!
//! Adapters map their source's names onto these; every later stage refers
//! to the constants, so a rename is one edit.

/// The canonical request log (DESIGN §3.1).
pub mod request {
    pub const REQUEST_ID: &str = "request_id";
    pub const TIMESTAMP: &str = "timestamp";
    pub const PROVIDER: &str = "provider";
    pub const MODEL: &str = "model";
    pub const BILLING_SCOPE: &str = "billing_scope";
    pub const TEAM: &str = "team";
    pub const USE_CASE: &str = "use_case";
    pub const INPUT_TOKENS: &str = "input_tokens";
    pub const CACHED_INPUT_TOKENS: &str = "cached_input_tokens";
    pub const CACHE_WRITE_TOKENS: &str = "cache_write_tokens";
    pub const OUTPUT_TOKENS: &str = "output_tokens";
    pub const STATUS: &str = "status";
    /// Optional: the token counts came from a tokenizer, not the provider
    /// (a bool, or `true`/`false`/`1`/`0`/`yes`/`no` as text).
    pub const TOKENS_ESTIMATED: &str = "tokens_estimated";
    /// Optional: the conversation (session, thread) a request belongs to,
    /// for the context-growth insight.
    pub const CONVERSATION_ID: &str = "conversation_id";
    /// Optional: a business outcome the request achieved (value-based
    /// charging), such as `resolved_ticket`.
    pub const OUTCOME: &str = "outcome";
    /// Optional: how many of `outcome`; 1 when the outcome is given alone.
    pub const OUTCOME_COUNT: &str = "outcome_count";
    /// Optional: the end user; seats are the distinct users of a team.
    pub const USER: &str = "user";

    /// Columns a request log must have.
    pub const REQUIRED: [&str; 6] = [
        REQUEST_ID,
        TIMESTAMP,
        PROVIDER,
        MODEL,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
    ];

    /// Token columns, in canonical order; the classes are mutually exclusive.
    pub const TOKEN_COLUMNS: [&str; 4] = [
        INPUT_TOKENS,
        CACHED_INPUT_TOKENS,
        CACHE_WRITE_TOKENS,
        OUTPUT_TOKENS,
    ];

    /// Every canonical column, in the order quarantine files list them.
    pub const ALL: [&str; 12] = [
        REQUEST_ID,
        TIMESTAMP,
        PROVIDER,
        MODEL,
        BILLING_SCOPE,
        TEAM,
        USE_CASE,
        INPUT_TOKENS,
        CACHED_INPUT_TOKENS,
        CACHE_WRITE_TOKENS,
        OUTPUT_TOKENS,
        STATUS,
    ];

    /// The optional value-based columns, after [`ALL`] in a quarantine
    /// file when some row set aside holds one (files without them keep
    /// the columns they always had).
    pub const VALUE_COLUMNS: [&str; 3] = [OUTCOME, OUTCOME_COUNT, USER];

    /// The optional insight columns, after the value-based ones in a
    /// quarantine file when some row set aside holds one.
    pub const INSIGHT_COLUMNS: [&str; 2] = [TOKENS_ESTIMATED, CONVERSATION_ID];

    /// The owner of requests that carry no team tag.
    pub const UNTAGGED_TEAM: &str = "untagged";
    /// The use case of requests that carry none.
    pub const NO_USE_CASE: &str = "general";
}

/// An outcome source (`[sources] outcomes`): business outcomes counted
/// by another system, one row per outcome (or per batch of `count`).
pub mod outcome {
    pub const TIMESTAMP: &str = "timestamp";
    pub const TEAM: &str = "team";
    pub const OUTCOME: &str = "outcome";
    pub const COUNT: &str = "count";
    /// Optional: the outcome's id in its system (a ticket number); a
    /// reference seen twice for one outcome counts once.
    pub const REFERENCE: &str = "reference";

    pub const REQUIRED: [&str; 4] = [TIMESTAMP, TEAM, OUTCOME, COUNT];
    /// Every column, in the order `quarantine/outcomes.csv` lists them.
    pub const ALL: [&str; 5] = [TIMESTAMP, TEAM, OUTCOME, COUNT, REFERENCE];
}

/// Columns of the quarantine files: where a row came from and why it was
/// set aside, then the row as read.
pub mod quarantine {
    pub const SOURCE: &str = "source";
    pub const ROW: &str = "row";
    pub const COLUMN: &str = "column";
    pub const REASON: &str = "reason";
    /// A bill row's amount as the source wrote it.
    pub const COST: &str = "cost";
    /// A bill row's fields as one JSON object of text values.
    pub const RECORD: &str = "record";

    pub const LOCATION: [&str; 4] = [SOURCE, ROW, COLUMN, REASON];
    /// What a quarantined bill row keeps of itself.
    pub const BILL_FIELDS: [&str; 2] = [COST, RECORD];
}

/// The ledgers a run publishes next to the invoices, by file.
pub mod ledger {
    /// `ledger.csv`: one row per invoice line. `description` is last: it
    /// came after the others, and readers by position keep working.
    pub const LEDGER: [&str; 15] = [
        "invoice_number",
        "team",
        "cost_center",
        "line",
        "kind",
        "provider",
        "model",
        "use_case",
        "tokens",
        "requests",
        "estimated",
        "rate",
        "amount",
        "currency",
        "description",
    ];
    /// `reconciliation.csv`: one row per provider, day and model. The
    /// four columns of what the bill stated in another currency came after
    /// the others, and readers by position keep working.
    pub const RECONCILIATION: [&str; 16] = [
        "provider",
        "day",
        "model",
        "billed_cost",
        "billed_tokens",
        "logged_tokens",
        "coverage",
        "attributed",
        "unattributed",
        "estimated",
        "catalog_cost",
        "price_variance",
        "bill_currency",
        "bill_cost",
        "fx_rate",
        "fx_rate_date",
    ];
    /// `journal.csv`: one row per account of an invoice's entry, the
    /// entry id being the invoice number; `debit` or `credit` is empty.
    pub const JOURNAL: [&str; 10] = [
        "entry_id",
        "date",
        "period",
        "account",
        "cost_center",
        "debit",
        "credit",
        "currency",
        "invoice_number",
        "memo",
    ];
    /// `exceptions.csv`: one row per exception.
    pub const EXCEPTIONS: [&str; 7] = [
        "kind", "provider", "day", "model", "team", "source", "detail",
    ];
    /// `allocations.parquet`: one row per part of an invoice usage line
    /// (or of the unattributed bucket). What the bill stated in another
    /// currency came last, as in `reconciliation.csv`.
    pub const ALLOCATIONS: [&str; 27] = [
        allocation::PERIOD,
        allocation::TEAM,
        allocation::INVOICE_LINE,
        allocation::PROVIDER,
        allocation::MODEL,
        allocation::USE_CASE,
        allocation::KIND,
        allocation::SOURCE,
        allocation::BILL_ROWS,
        allocation::DAY,
        allocation::USAGE_TYPE,
        allocation::BILLED_COST,
        allocation::COVERED_COST,
        allocation::QUANTITY,
        allocation::WEIGHT_BASIS,
        allocation::WEIGHT,
        allocation::TOTAL_WEIGHT,
        allocation::PRICE_PER_MTOK,
        allocation::PRICES_FROM,
        allocation::EXACT_SHARE,
        allocation::AMOUNT,
        allocation::ADJUSTMENT,
        allocation::CURRENCY,
        allocation::BILL_CURRENCY,
        allocation::BILL_COST,
        allocation::FX_RATE,
        allocation::FX_RATE_DATE,
    ];

    /// The columns of `allocations.parquet`, by name.
    pub mod allocation {
        pub const PERIOD: &str = "period";
        /// Empty (null) for the unattributed bucket.
        pub const TEAM: &str = "team";
        /// The line's number on the team's invoice, from 1.
        pub const INVOICE_LINE: &str = "invoice_line";
        pub const PROVIDER: &str = "provider";
        pub const MODEL: &str = "model";
        pub const USE_CASE: &str = "use_case";
        /// `billed`, `unattributed`, `spread`, `catalog` or `rounding`.
        pub const KIND: &str = "kind";
        /// `uri:row` of the billed line, `catalog`, or
        /// `unattributed:<provider>` for a spread part.
        pub const SOURCE: &str = "source";
        pub const BILL_ROWS: &str = "bill_rows";
        pub const DAY: &str = "day";
        pub const USAGE_TYPE: &str = "usage_type";
        pub const BILLED_COST: &str = "billed_cost";
        pub const COVERED_COST: &str = "covered_cost";
        pub const QUANTITY: &str = "quantity";
        pub const WEIGHT_BASIS: &str = "weight_basis";
        pub const WEIGHT: &str = "weight";
        pub const TOTAL_WEIGHT: &str = "total_weight";
        pub const PRICE_PER_MTOK: &str = "price_per_mtok";
        pub const PRICES_FROM: &str = "prices_from";
        pub const EXACT_SHARE: &str = "exact_share";
        pub const AMOUNT: &str = "amount";
        /// `amount − exact_share`: what rounding gave or took.
        pub const ADJUSTMENT: &str = "adjustment";
        pub const CURRENCY: &str = "currency";
        /// The billed line's currencies when some of it was billed in
        /// another currency (`;`-separated, like the three after it).
        pub const BILL_CURRENCY: &str = "bill_currency";
        /// The billed line's cost as the bill states it, per currency.
        pub const BILL_COST: &str = "bill_cost";
        /// The `[[fx]]` rate it was converted at, per currency.
        pub const FX_RATE: &str = "fx_rate";
        /// That rate's `effective_from`, per currency.
        pub const FX_RATE_DATE: &str = "fx_rate_date";
    }
}

/// Working columns added while ingesting; never written to an output.
pub mod work {
    pub const SOURCE: &str = "__source";
    pub const ROW: &str = "__row";
    pub const DAY: &str = "__day";
    pub const REASON: &str = "__reason";
    pub const COLUMN: &str = "__column";
    pub const VALUE: &str = "__value";
    pub const RESOLVED_MODEL: &str = "__model";
    pub const IS_ERROR: &str = "__is_error";
    pub const REQUESTS: &str = "__requests";
    pub const ERRORS: &str = "__errors";
}

/// FOCUS 1.x columns we read (DESIGN §3.2), plus our `x_` extension.
pub mod focus {
    pub const BILLED_COST: &str = "BilledCost";
    pub const BILLING_CURRENCY: &str = "BillingCurrency";
    pub const CHARGE_PERIOD_START: &str = "ChargePeriodStart";
    pub const CHARGE_CATEGORY: &str = "ChargeCategory";
    pub const CHARGE_CLASS: &str = "ChargeClass";
    pub const CHARGE_DESCRIPTION: &str = "ChargeDescription";
    pub const PROVIDER_NAME: &str = "ProviderName";
    pub const PUBLISHER_NAME: &str = "PublisherName";
    pub const SERVICE_NAME: &str = "ServiceName";
    pub const SERVICE_CATEGORY: &str = "ServiceCategory";
    /// The `ServiceCategory` of AI services (FOCUS 1.0+).
    pub const AI_SERVICE_CATEGORY: &str = "AI and Machine Learning";
    pub const SUB_ACCOUNT_ID: &str = "SubAccountId";
    pub const CONSUMED_QUANTITY: &str = "ConsumedQuantity";
    pub const CONSUMED_UNIT: &str = "ConsumedUnit";
    pub const PRICING_QUANTITY: &str = "PricingQuantity";
    pub const PRICING_UNIT: &str = "PricingUnit";
    pub const X_MODEL: &str = "x_Model";
    pub const X_USAGE_TYPE: &str = "x_UsageType";
    pub const TAGS: &str = "Tags";
    pub const RESOURCE_ID: &str = "ResourceId";
    pub const SKU_METER: &str = "SkuMeter";
    /// Azure's and GCP's FOCUS exports name the meter / SKU here.
    pub const X_SKU_METER_NAME: &str = "x_SkuMeterName";
    pub const X_SKU_DESCRIPTION: &str = "x_SkuDescription";
    /// Microsoft: the meter's service (`Cognitive Services`).
    pub const X_SKU_METER_CATEGORY: &str = "x_SkuMeterCategory";
    /// Microsoft: the meter's product (`Azure OpenAI`).
    pub const X_SKU_METER_SUBCATEGORY: &str = "x_SkuMeterSubcategory";
    /// Microsoft: usage units per pricing block (`1000` for a `1K` meter);
    /// `PricingQuantity` = consumed units / block size.
    pub const X_PRICING_BLOCK_SIZE: &str = "x_PricingBlockSize";
    /// Microsoft: the meter's unit of measure with its block (`1K`, `1M`).
    pub const X_PRICING_UNIT_DESCRIPTION: &str = "x_PricingUnitDescription";
    /// FOCUS: the billing period a row is invoiced in.
    pub const BILLING_PERIOD_START: &str = "BillingPeriodStart";

    /// Columns that may name the token meter, most specific first. AWS's
    /// FOCUS export puts the CUR usage type (`USE1-Claude3.5Sonnet-input-tokens`)
    /// in `x_UsageType`.
    pub const METER_COLUMNS: [&str; 5] = [
        X_USAGE_TYPE,
        SKU_METER,
        X_SKU_METER_NAME,
        X_SKU_DESCRIPTION,
        CHARGE_DESCRIPTION,
    ];

    /// Columns every FOCUS export must have for us to read it.
    pub const REQUIRED: [&str; 5] = [
        BILLED_COST,
        BILLING_CURRENCY,
        CHARGE_PERIOD_START,
        CHARGE_CATEGORY,
        PROVIDER_NAME,
    ];
}

/// Token classes, as `usage_type` values on billed lines and prices.
pub mod usage_type {
    pub const INPUT: &str = "input";
    pub const CACHED_INPUT: &str = "cached_input";
    pub const CACHE_WRITE: &str = "cache_write";
    pub const OUTPUT: &str = "output";
    pub const OTHER: &str = "other";
}

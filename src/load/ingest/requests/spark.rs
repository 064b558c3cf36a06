//! The heavy stage of the request logs on a Spark cluster, over Spark
//! Connect: the row checks, exact de-duplication and the rollup to the
//! raw grain, giving [`MonthUsage`](super::MonthUsage) what the two local
//! scans give it.
//!
//! The cluster only decides what it is *sure* of, and sends back the rest:
//!
//! - A row is **sure** when every row check passes by rules written here in
//!   Spark SQL that are narrower than this binary's (an RFC 3339 timestamp
//!   without surrounding blanks, counts written plainly, a known status
//!   word): whatever they accept, the local checks accept, with the same
//!   day and counts.
//! - Rows are numbered in file order by (source, split start, row in the
//!   split): `row_number() over (partition by request_id order by src,
//!   blk, mid)`, with `request_id` trimmed as Rust trims (every Unicode
//!   white space). Spark's `dropDuplicates` and `first()` do not say which
//!   row they keep, so they are not used.
//! - An id whose rows are all sure is judged on the cluster: the first row
//!   is summed into its group, the others are duplicates, counted, and the
//!   first `[engine] list_limit` of them (in file order) named.
//! - Every row of an id with a row the cluster is not sure of comes back
//!   whole, and this binary checks and de-duplicates those rows in file
//!   order as it does its own ([`MonthUsage::add_details`](super::MonthUsage)):
//!   the first row that passes the checks keeps the id.
//!
//! Rows come back in the types Spark read them as and pass through the
//! same [`normalize`](super::normalize) as local frames, so a quarantined
//! row's message and fields are the local ones.

use std::collections::{BTreeMap, HashMap, HashSet};

use polars::prelude::*;
use spark_connect::row::{Row, Value};
use spark_connect::types::DataType as SparkType;
use spark_connect::{SparkSession, SparkSessionBuilder};

use super::{
    Detail, FateKey, InsightColumns, KEY_TEXT, MAX_OUTCOME_COUNT, MAX_TOKENS, RawKey,
    RawVerdictKey, RequestSource, Sums, TurnGroup, UserNames, is_null_text, normalize, period_days,
};
use crate::config::{Engine as EngineSettings, FileFormat, RequestFormat, SPARK_TOKEN_ENV};
use crate::error::{Error, Location, Result};
use crate::load::ingest::NULL_SPELLINGS;
use crate::period::Period;
use crate::schema::request::*;

/// Settings this binary gives every session: each one shapes the result.
/// Set after `[engine] conf`, so a policy cannot change them.
const SESSION: [(&str, &str); 3] = [
    // Typed timestamps to UTC days, as the local path does.
    ("spark.sql.session.timeZone", "UTC"),
    // Column names as Polars matches them: `Team` is not `team`.
    ("spark.sql.caseSensitive", "true"),
    // Overflow and bad casts are errors, never wrapped or nulled values.
    ("spark.sql.ansi.enabled", "true"),
];

/// The characters Rust's `str::trim` removes (Unicode `White_Space`), as
/// a Java regex class: ids are trimmed, and key values judged blank, as
/// this binary does.
const WS: &str = r"[\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]";

/// The count columns the cluster reads: the token classes, then the
/// outcome count.
const COUNTS: [&str; 5] = [
    INPUT_TOKENS,
    CACHED_INPUT_TOKENS,
    CACHE_WRITE_TOKENS,
    OUTPUT_TOKENS,
    OUTCOME_COUNT,
];

/// The text columns carried as read.
const TEXTS: [&str; 10] = [
    REQUEST_ID,
    PROVIDER,
    MODEL,
    BILLING_SCOPE,
    TEAM,
    USE_CASE,
    STATUS,
    OUTCOME,
    USER,
    CONVERSATION_ID,
];

/// How a source's column is typed, as far as the checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    /// Parquet's unsigned 64-bit integers, which Spark reads as decimals.
    UInt64,
    Float,
    Bool,
    /// An instant (`TIMESTAMP`), a wall time (`TIMESTAMP_NTZ`), a date.
    Instant,
    WallTime,
    Date,
    /// Anything else: carried as text, judged by this binary.
    Other,
}

fn kind(t: &SparkType) -> Kind {
    match t {
        SparkType::String { .. } | SparkType::Char { .. } | SparkType::Varchar { .. } => Kind::Text,
        SparkType::Byte | SparkType::Short | SparkType::Integer | SparkType::Long => Kind::Int,
        SparkType::Decimal {
            precision: 20,
            scale: 0,
        } => Kind::UInt64,
        SparkType::Float | SparkType::Double => Kind::Float,
        SparkType::Boolean => Kind::Bool,
        SparkType::Timestamp => Kind::Instant,
        SparkType::TimestampNtz => Kind::WallTime,
        SparkType::Date => Kind::Date,
        _ => Kind::Other,
    }
}

/// The Polars type a column of `kind` stands for, as the local reader
/// would have typed it.
fn polars_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text | Kind::Other => DataType::String,
        Kind::Int => DataType::Int64,
        Kind::UInt64 => DataType::UInt64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Instant => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        Kind::WallTime => DataType::Datetime(TimeUnit::Microseconds, None),
        Kind::Date => DataType::Date,
    }
}

/// A connected session.
pub(super) struct Cluster {
    session: SparkSession,
    engine: EngineSettings,
    version: String,
}

impl Cluster {
    /// Connects to `[engine] url` (with the token from the environment)
    /// and sets the session's settings.
    pub(super) fn connect(engine: &EngineSettings) -> Result<Cluster> {
        let url = engine.url.clone().unwrap_or_default();
        let token = std::env::var(SPARK_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty());
        let mut full = url.clone();
        if let Some(t) = &token {
            if !full.contains("/;") {
                full.push_str(if full.ends_with('/') { ";" } else { "/;" });
            } else {
                full.push(';');
            }
            full.push_str("token=");
            full.push_str(t);
        }
        let unreachable = |e: spark_connect::SparkError| {
            Error::storage(
                &url,
                format!(
                    "cannot reach the Spark Connect server: {}",
                    scrub(&e, &token)
                ),
            )
            .with_hint(
                "check `[engine] url` and that the cluster's Spark Connect server is running",
            )
        };
        // The client retries an unreachable server with backoff for up to
        // an hour; a scheduled close should hear about it in seconds.
        reachable(&url).map_err(|e| {
            Error::storage(&url, format!("cannot reach the Spark Connect server: {e}")).with_hint(
                "check `[engine] url` and that the cluster's Spark Connect server is running",
            )
        })?;
        let session = SparkSessionBuilder::new()
            .remote(&full)
            .get_or_create()
            .map_err(unreachable)?;
        let version = session.version().map_err(unreachable)?;
        let conf = session.conf();
        for (k, v) in engine
            .conf
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(SESSION)
        {
            conf.set(k, v).map_err(|e| {
                Error::policy(
                    Location::file("[engine] conf"),
                    format!("the cluster refused `{k} = \"{v}\"`: {}", scrub(&e, &token)),
                )
            })?;
        }
        Ok(Cluster {
            session,
            engine: engine.clone(),
            version,
        })
    }

    /// Plans the month: one view per source, checked and numbered.
    pub(super) fn month<'a>(
        &'a self,
        sources: &'a [RequestSource],
        period: Period,
    ) -> Result<Job<'a>> {
        let mut schemas = Vec::with_capacity(sources.len());
        let mut columns = Vec::with_capacity(sources.len());
        for (i, s) in sources.iter().enumerate() {
            let (kinds, all) = self.register(i, s)?;
            schemas.push(kinds);
            columns.push(all);
        }
        let insight = InsightColumns {
            conversation: schemas.iter().any(|s| s.contains_key(CONVERSATION_ID)),
            estimated: schemas.iter().any(|s| s.contains_key(TOKENS_ESTIMATED)),
        };
        // The local checks of each source's columns (missing columns, a
        // timestamp of no time type), on no rows: the same errors.
        for (i, (s, all)) in sources.iter().zip(&columns).enumerate() {
            // Every column of the file, in its order, as messages list them.
            let polars: Schema = all
                .iter()
                .map(|(name, k)| Field::new(name.into(), polars_type(*k)))
                .collect();
            let _checked = normalize(
                i as u32,
                DataFrame::empty_with_schema(&polars).lazy(),
                &polars,
                &s.url,
                insight,
            )?;
        }
        let rows: Vec<String> = schemas
            .iter()
            .enumerate()
            .map(|(i, schema)| projection(i, schema, file_format(&sources[i])))
            .collect();
        let (first, last) = period_days(period);
        let judged = judged_sql(&rows.join("\nUNION ALL\n"), first, last);
        let job = Job {
            cluster: self,
            sources,
            schemas,
            insight,
        };
        job.run(&format!("CACHE TABLE {JUDGED} AS {judged}"))?;
        Ok(job)
    }

    /// Reads one source as a view `cb_src_<i>` with its split start and a
    /// row id; returns its canonical columns' kinds.
    #[allow(clippy::type_complexity)]
    fn register(
        &self,
        i: usize,
        source: &RequestSource,
    ) -> Result<(BTreeMap<String, Kind>, Vec<(String, Kind)>)> {
        if source.format != RequestFormat::Canonical {
            return Err(Error::input(
                Location::file(&source.url),
                format!(
                    "the Spark engine reads canonical request logs; this is a {} export",
                    source.format.name()
                ),
            )
            .with_hint("convert it to the canonical schema in the lake, or set `[engine] kind = \"local\"`"));
        }
        let path = self.path(&source.url)?;
        let reader = self.session.read();
        let reader = match file_format(source) {
            Some(FileFormat::Csv) => reader
                .format("csv")
                .option("header", "true")
                .option("inferSchema", "false")
                // Quoted fields may hold line breaks, and `""` is a quote
                // (RFC 4180), as the local reader reads them.
                .option("multiLine", "true")
                .option("escape", "\"")
                .option("mode", "FAILFAST"),
            Some(FileFormat::Parquet) => reader.format("parquet"),
            Some(FileFormat::Jsonl) => reader.format("json").option("mode", "FAILFAST"),
            Some(FileFormat::Json) => reader
                .format("json")
                .option("multiLine", "true")
                .option("mode", "FAILFAST"),
            None => {
                return Err(Error::input(
                    Location::file(&source.url),
                    "cannot tell the file's format from its name",
                )
                .with_hint("name it .csv, .parquet or .jsonl, or give `format` in the policy"));
            }
        };
        let df = reader.load(Some(&path)).select_expr(vec![
            "*",
            "_metadata.file_block_start AS __blk",
            "monotonically_increasing_id() AS __mid",
        ]);
        let cannot_read = |e: spark_connect::SparkError| {
            let text = e.to_string();
            let hint = if text.contains("TIMESTAMP(NANOS") {
                // Spark reads no nanosecond timestamps (pyarrow's default
                // for pandas data); this binary's local engine does.
                "Spark cannot read nanosecond timestamps: write the file with microseconds (pyarrow: `coerce_timestamps=\"us\"`), or close this month with `[engine] kind = \"local\"`".to_string()
            } else {
                format!(
                    "the cluster reads it as `{path}`; check `[engine] path_map` and the cluster's access to it"
                )
            };
            Error::input(
                Location::file(&source.url),
                format!("the cluster cannot read the file: {}", first_line(&text)),
            )
            .with_hint(hint)
        };
        let schema = df.schema().map_err(cannot_read)?;
        df.create_or_replace_temp_view(&format!("cb_src_{i}"))
            .map_err(cannot_read)?;
        let SparkType::Struct { fields } = schema else {
            return Ok((BTreeMap::new(), Vec::new()));
        };
        let all: Vec<(String, Kind)> = fields
            .iter()
            .filter(|f| !f.name.starts_with("__"))
            .map(|f| (f.name.clone(), kind(&f.data_type)))
            .collect();
        let canonical: HashSet<&str> = TEXTS
            .iter()
            .chain(&COUNTS)
            .chain(&[TIMESTAMP, TOKENS_ESTIMATED])
            .copied()
            .collect();
        let kinds = all
            .iter()
            .filter(|(name, _)| canonical.contains(name.as_str()))
            .cloned()
            .collect();
        Ok((kinds, all))
    }

    /// The URL the cluster reads an object at: `[engine] path_map`
    /// applied (longest prefix first), local paths made absolute.
    fn path(&self, url: &str) -> Result<String> {
        let mut maps: Vec<(&String, &String)> = self.engine.path_map.iter().collect();
        maps.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        if let Some((from, to)) = maps.iter().find(|(from, _)| url.starts_with(from.as_str())) {
            return Ok(format!("{to}{}", &url[from.len()..]));
        }
        if url.starts_with("memory://") {
            return Err(Error::input(
                Location::file(url),
                "a Spark cluster cannot read this process's memory store",
            ));
        }
        if url.contains("://") {
            return Ok(url.to_string());
        }
        let path = std::path::absolute(url).map_err(|e| Error::storage(url, e.to_string()))?;
        Ok(format!("file://{}", path.display()))
    }
}

/// The table of every row, checked and numbered (cached on the cluster
/// for the queries of one run).
const JUDGED: &str = "cb_judged";

/// What a source is read as: the policy's `format`, else its name's.
fn file_format(source: &RequestSource) -> Option<FileFormat> {
    source
        .file_format
        .or_else(|| FileFormat::from_name(&source.url))
}

/// How long the first TCP connection to the server may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens (and closes) one TCP connection to the `sc://host:port` of `url`;
/// the port defaults to Spark Connect's 15002.
fn reachable(url: &str) -> std::io::Result<()> {
    use std::net::{TcpStream, ToSocketAddrs};
    let rest = url.strip_prefix("sc://").unwrap_or(url);
    let authority = rest.split(['/', ';']).next().unwrap_or_default();
    let bracketed = authority.starts_with('[');
    let has_port = match authority.rfind(':') {
        Some(i) => !bracketed || authority[..i].ends_with(']'),
        None => false,
    };
    let target = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:15002")
    };
    let mut last = None;
    for addr in target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
    }))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// A client error as text, with the token (if any) blotted out.
fn scrub(e: &spark_connect::SparkError, token: &Option<String>) -> String {
    let text = first_line(&e.to_string()).to_string();
    match token {
        Some(t) => text.replace(t.as_str(), "***"),
        None => text,
    }
}

/// The Polars schema of a source's canonical columns, as the local reader
/// would have typed them.
fn polars_schema(kinds: &BTreeMap<String, Kind>) -> Schema {
    kinds
        .iter()
        .map(|(name, k)| Field::new(name.into(), polars_type(*k)))
        .collect()
}

/// Source `i`'s rows in the one shape every source shares: text columns as
/// text, counts as an integer, a double or text (whichever the file
/// wrote), the timestamp as text or microseconds.
fn projection(i: usize, kinds: &BTreeMap<String, Kind>, format: Option<FileFormat>) -> String {
    let csv = format == Some(FileFormat::Csv);
    // A column as text; CSV's spellings of null are null (as the local
    // reader reads them).
    let text = |c: &str| -> String {
        match kinds.get(c) {
            None => "CAST(NULL AS STRING)".into(),
            Some(_) if csv => {
                let spellings = NULL_SPELLINGS.map(|s| format!("'{s}'")).join(", ");
                format!(
                    "CASE WHEN CAST(`{c}` AS STRING) IN ({spellings}) THEN NULL ELSE CAST(`{c}` AS STRING) END"
                )
            }
            Some(_) => format!("CAST(`{c}` AS STRING)"),
        }
    };
    let mut cols = vec![
        format!("{i} AS src"),
        "__blk AS blk".into(),
        "__mid AS mid".into(),
    ];
    for c in TEXTS {
        cols.push(format!("{} AS `{c}`", text(c)));
    }
    let ts = kinds.get(TIMESTAMP).copied();
    cols.push(format!(
        "{} AS ts_s",
        match ts {
            Some(Kind::Text) => text(TIMESTAMP),
            _ => "CAST(NULL AS STRING)".into(),
        }
    ));
    cols.push(format!(
        "{} AS ts_us",
        match ts {
            Some(Kind::Instant) => format!("unix_micros(`{TIMESTAMP}`)"),
            Some(Kind::WallTime) => format!("unix_micros(CAST(`{TIMESTAMP}` AS TIMESTAMP))"),
            Some(Kind::Date) => format!("CAST(unix_date(`{TIMESTAMP}`) AS BIGINT) * 86400000000"),
            _ => "CAST(NULL AS BIGINT)".into(),
        }
    ));
    for (n, c) in COUNTS.iter().enumerate() {
        let k = kinds.get(*c).copied();
        let (int, float, txt) = match k {
            Some(Kind::Int) => (format!("CAST(`{c}` AS BIGINT)"), None, None),
            Some(Kind::Float) => (String::new(), Some(format!("CAST(`{c}` AS DOUBLE)")), None),
            Some(_) => (String::new(), None, Some(text(c))),
            None => (String::new(), None, None),
        };
        let int = if int.is_empty() {
            "CAST(NULL AS BIGINT)".into()
        } else {
            int
        };
        cols.push(format!("{int} AS c{n}_i"));
        cols.push(format!(
            "{} AS c{n}_f",
            float.unwrap_or_else(|| "CAST(NULL AS DOUBLE)".into())
        ));
        cols.push(format!(
            "{} AS c{n}_s",
            txt.unwrap_or_else(|| "CAST(NULL AS STRING)".into())
        ));
    }
    let est = kinds.get(TOKENS_ESTIMATED).copied();
    cols.push(format!(
        "{} AS est_b",
        match est {
            Some(Kind::Bool) => format!("`{TOKENS_ESTIMATED}`"),
            _ => "CAST(NULL AS BOOLEAN)".into(),
        }
    ));
    cols.push(format!(
        "{} AS est_s",
        match est {
            Some(Kind::Bool) | None => "CAST(NULL AS STRING)".into(),
            Some(_) => text(TOKENS_ESTIMATED),
        }
    ));
    format!("SELECT {} FROM cb_src_{i}", cols.join(", "))
}

/// The checked and numbered rows, from the union of the projections.
///
/// `class` is `plain` (sure, first of its id: summed here), `duplicate`
/// (sure, a later row of an id all of whose rows are sure) or `detail`
/// (sent back whole).
fn judged_sql(rows: &str, first: i32, last: i32) -> String {
    let nonblank = |c: &str| {
        format!(
            "(`{c}` RLIKE {})",
            sql_text(&format!("[^{}]", &WS[1..WS.len() - 1]))
        )
    };
    let nullif = |c: &str| format!("NULLIF(`{c}`, '')");
    // The timestamp as text: RFC 3339 as this binary reads it, nothing
    // around it, a year from 0001.
    let re = r"^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.]([0-9]+))?(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?)?$";
    let re = sql_text(re);
    let part = |k: usize| format!("try_cast(regexp_extract(ts_s, {re}, {k}) AS INT)");
    let parts = format!(
        "SELECT *, ts_s RLIKE {re} AS ts_m, {y} AS ty, {mo} AS tmo, {d} AS td, \
         coalesce({h}, 0) AS th, coalesce({mi}, 0) AS tmi, coalesce({s}, 0) AS tsec, \
         regexp_extract(ts_s, {re}, 7) AS tfrac, \
         CASE regexp_extract(ts_s, {re}, 9) WHEN '+' THEN 1 WHEN '-' THEN -1 ELSE 0 END AS tsign, \
         coalesce({oh}, 0) AS toh, coalesce({om}, 0) AS tom FROM ({rows})",
        y = part(1),
        mo = part(2),
        d = part(3),
        h = part(4),
        mi = part(5),
        s = part(6),
        oh = part(10),
        om = part(11),
    );
    // Days since 1970-01-01 of a valid y-m-d (Howard Hinnant's
    // days_from_civil, in integers; years from 1).
    let leap = "((ty % 4 = 0 AND ty % 100 <> 0) OR ty % 400 = 0)";
    let valid = format!(
        "(ts_m AND ty >= 1 AND tmo BETWEEN 1 AND 12 AND td >= 1 AND td <= CASE WHEN tmo = 2 THEN \
         CASE WHEN {leap} THEN 29 ELSE 28 END WHEN tmo IN (4, 6, 9, 11) THEN 30 ELSE 31 END \
         AND th <= 23 AND tmi <= 59 AND tsec <= 60 AND toh <= 23 AND tom <= 59)"
    );
    let civil = "(((CASE WHEN tmo <= 2 THEN ty - 1 ELSE ty END) div 400) * 146097 \
         + ((CASE WHEN tmo <= 2 THEN ty - 1 ELSE ty END) % 400) * 365 \
         + ((CASE WHEN tmo <= 2 THEN ty - 1 ELSE ty END) % 400) div 4 \
         - ((CASE WHEN tmo <= 2 THEN ty - 1 ELSE ty END) % 400) div 100 \
         + (153 * (tmo + CASE WHEN tmo > 2 THEN -3 ELSE 9 END) + 2) div 5 + td - 1 - 719468)";
    let offset = "(tsign * (toh * 60 + tom))";
    let text_day = format!(
        "(CASE WHEN {valid} THEN {civil} + ((th * 60 + tmi - {offset}) + 2880) div 1440 - 2 END)"
    );
    let text_micros = format!(
        "(CASE WHEN {valid} THEN (CAST({civil} AS BIGINT) * 86400 + th * 3600 + tmi * 60 + tsec - {offset} * 60) * 1000000 \
         + CAST(rpad(substr(tfrac, 1, 6), 6, '0') AS BIGINT) END)"
    );
    let day = format!(
        "CAST(CASE WHEN ts_us IS NOT NULL THEN (ts_us - pmod(ts_us, 86400000000)) div 86400000000 ELSE {text_day} END AS INT)"
    );
    let micros = format!("CASE WHEN ts_us IS NOT NULL THEN ts_us ELSE {text_micros} END");
    // A count: its value (when it is one) and whether it passes.
    let count = |n: usize, max: i64, required: bool| -> (String, String) {
        let value = format!(
            "CASE WHEN c{n}_i IS NOT NULL THEN c{n}_i WHEN c{n}_f IS NOT NULL THEN try_cast(c{n}_f AS BIGINT) \
             WHEN c{n}_s IS NOT NULL THEN try_cast(c{n}_s AS BIGINT) END"
        );
        let ok = format!(
            "(CASE WHEN c{n}_i IS NOT NULL THEN c{n}_i BETWEEN 0 AND {max} \
             WHEN c{n}_f IS NOT NULL THEN (c{n}_f BETWEEN 0 AND {max} AND c{n}_f % 1 = 0) \
             WHEN c{n}_s IS NOT NULL THEN (c{n}_s RLIKE '^(0|[1-9][0-9]{{0,9}})$' AND try_cast(c{n}_s AS BIGINT) <= {max}) \
             ELSE {} END)",
            if required { "false" } else { "true" }
        );
        (value, ok)
    };
    let mut values = Vec::new();
    let mut checks = vec![
        "(tid IS NOT NULL AND tid <> '')".to_string(),
        "day IS NOT NULL".to_string(),
        nonblank(PROVIDER),
        nonblank(MODEL),
        format!("(`{STATUS}` IS NULL OR lower(`{STATUS}`) IN ('ok', 'success', 'error', 'failure', 'failed'))"),
        "(est_b IS NOT NULL OR est_s IS NULL OR lower(est_s) IN ('true', '1', 'yes', 'false', '0', 'no', 'null', 'none'))".into(),
    ];
    for (n, column) in COUNTS.iter().enumerate().take(4) {
        let required = *column == INPUT_TOKENS || *column == OUTPUT_TOKENS;
        let (value, ok) = count(n, MAX_TOKENS, required);
        values.push(format!(
            "CASE WHEN {ok} THEN coalesce({value}, 0) END AS t{n}"
        ));
        checks.push(ok);
    }
    let (oc, oc_ok) = count(4, MAX_OUTCOME_COUNT, false);
    checks.push(oc_ok.clone());
    // A count without the outcome it counts.
    checks.push(format!(
        "NOT ({oc} IS NOT NULL AND NOT coalesce({}, false))",
        nonblank(OUTCOME)
    ));
    values.push(format!(
        "CASE WHEN {oc_ok} THEN (CASE WHEN {} IS NULL THEN 0 ELSE coalesce({oc}, 1) END) END AS outc",
        nullif(OUTCOME)
    ));
    values.push("coalesce(est_b, lower(est_s) IN ('true', '1', 'yes'), false) AS est".into());
    let checked = format!(
        "SELECT *, {sure} AS sure FROM (SELECT *, {values}, {micros} AS micros, day BETWEEN {first} AND {last} AS in_period \
         FROM (SELECT *, {day} AS day, regexp_replace(`{REQUEST_ID}`, {trim}, '') AS tid FROM ({parts})))",
        trim = sql_text(&format!("^{WS}+|{WS}+$")),
        sure = checks
            .iter()
            .map(|c| format!("coalesce({c}, false)"))
            .collect::<Vec<_>>()
            .join(" AND "),
        values = values.join(", "),
    );
    format!(
        "SELECT *, CASE WHEN sure AND unsure_id = 0 AND rn = 1 THEN 'plain' \
         WHEN sure AND unsure_id = 0 THEN 'duplicate' ELSE 'detail' END AS class \
         FROM (SELECT *, sum(CASE WHEN sure THEN 0 ELSE 1 END) OVER (PARTITION BY tid) AS unsure_id, \
         row_number() OVER (PARTITION BY tid ORDER BY src, blk, mid) AS rn FROM ({checked}))"
    )
}

/// `text` as a Spark SQL string literal (whose `\\` and `'` are escapes).
fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The rows of one month on the cluster.
pub(super) struct Job<'a> {
    cluster: &'a Cluster,
    sources: &'a [RequestSource],
    schemas: Vec<BTreeMap<String, Kind>>,
    insight: InsightColumns,
}

/// What the cluster gives [`MonthUsage`](super::MonthUsage).
pub(super) struct ClusterUsage {
    pub groups: HashMap<RawKey, Sums>,
    pub users: HashMap<FateKey, HashSet<u32>>,
    pub user_names: UserNames,
    pub turns: Vec<TurnGroup>,
    pub details: Vec<Detail>,
    pub duplicates: Vec<Detail>,
    pub duplicates_total: u64,
    pub rows_by_source: Vec<u64>,
}

/// The text columns a row's fate depends on: provider, model, status, team.
const FATE: [&str; 4] = [PROVIDER, MODEL, STATUS, TEAM];

impl Job<'_> {
    fn run(&self, sql: &str) -> Result<Vec<Row>> {
        let df = self.cluster.session.sql(sql).map_err(|e| self.error(e))?;
        df.collect().map_err(|e| self.error(e))
    }

    /// An error of the cluster, naming the month's sources.
    pub(super) fn error(&self, e: impl std::fmt::Display) -> Error {
        let urls: Vec<&str> = self.sources.iter().map(|s| s.url.as_str()).collect();
        Error::input(
            Location::file(urls.join(", ")),
            format!("the Spark job failed: {}", first_line(&e.to_string())),
        )
        .with_hint(
            "a value may not match its column's type; the cluster's driver log has the details",
        )
    }

    /// What the manifest records of the engine.
    pub(super) fn record(&self) -> super::EngineRecord {
        let mut settings: BTreeMap<String, String> = self.cluster.engine.conf.clone();
        for (k, v) in SESSION {
            settings.insert(k.into(), v.into());
        }
        settings.insert(
            "list_limit".into(),
            self.cluster.engine.list_limit.to_string(),
        );
        for (from, to) in &self.cluster.engine.path_map {
            settings.insert(format!("path_map {from}"), to.clone());
        }
        super::EngineRecord {
            kind: "spark-connect".into(),
            version: self.cluster.version.clone(),
            settings,
            unlisted_rows: 0,
        }
    }

    /// Every query of the heavy stage, run on the cached table.
    pub(super) fn usage(&self) -> Result<ClusterUsage> {
        let blocks = self.blocks()?;
        let mut rows_by_source = vec![0u64; self.sources.len()];
        for ((src, _), (n, _, _)) in &blocks {
            rows_by_source[*src] += n;
        }
        let key = |c: &str| format!("NULLIF(`{c}`, '')");
        let group_keys: Vec<String> = KEY_TEXT.iter().map(|c| key(c)).collect();
        let groups = self.run(&format!(
            "SELECT day, {keys}, sum(t0), sum(t1), sum(t2), sum(t3), count(*), sum(outc), \
             sum(CASE WHEN est THEN t0 ELSE 0 END), sum(CASE WHEN est THEN t1 ELSE 0 END), \
             sum(CASE WHEN est THEN t2 ELSE 0 END), sum(CASE WHEN est THEN t3 ELSE 0 END) \
             FROM {JUDGED} WHERE class = 'plain' GROUP BY day, {keys}",
            keys = group_keys.join(", ")
        ))?;
        let mut out = HashMap::new();
        for r in &groups {
            let key = RawKey {
                day: int(r, 0) as i32,
                text: std::array::from_fn(|k| text(r, 1 + k)),
            };
            let sums = Sums {
                tokens: std::array::from_fn(|t| count(r, 8 + t)),
                requests: count(r, 12),
                outcomes: count(r, 13),
                estimated: std::array::from_fn(|t| count(r, 14 + t)),
                ..Sums::default()
            };
            out.insert(key, sums);
        }
        let fate: Vec<String> = FATE.iter().map(|c| key(c)).collect();
        let mut users: HashMap<FateKey, HashSet<u32>> = HashMap::new();
        let mut user_names = UserNames::default();
        for r in self.run(&format!(
            "SELECT DISTINCT in_period, {fate}, `{USER}` FROM {JUDGED} \
             WHERE class = 'plain' AND `{USER}` IS NOT NULL AND `{USER}` <> ''",
            fate = fate.join(", ")
        ))? {
            let key = FateKey {
                in_period: matches!(r.get(0), Some(Value::Bool(true))),
                text: std::array::from_fn(|k| text(&r, 1 + k)),
            };
            let name = text(&r, 5).unwrap_or_default();
            users.entry(key).or_default().insert(user_names.id(&name));
        }
        let mut turns = Vec::new();
        if self.insight.conversation {
            for r in self.run(&format!(
                "SELECT {fate}, `{CONVERSATION_ID}`, micros, tid, t0, t1, t2, t3 FROM {JUDGED} \
                 WHERE class = 'plain' AND `{CONVERSATION_ID}` IS NOT NULL AND `{CONVERSATION_ID}` <> ''",
                fate = fate.join(", ")
            ))? {
                let conversation = text(&r, 4).unwrap_or_default();
                if is_null_text(&conversation) {
                    continue;
                }
                turns.push(TurnGroup {
                    fate: std::array::from_fn(|k| text(&r, k)),
                    conversation,
                    turns: vec![(
                        int(&r, 5),
                        text(&r, 6).unwrap_or_default().into(),
                        std::array::from_fn(|t| u32::try_from(int(&r, 7 + t)).unwrap_or(u32::MAX)),
                    )],
                });
            }
        }
        let details = self.rows("class = 'detail'", None, &blocks)?;
        let details = Detail::from_frame(&details).map_err(|e| self.error(e))?;
        let limit = self.cluster.engine.list_limit;
        let duplicates = self.rows("class = 'duplicate'", Some(limit), &blocks)?;
        let duplicates = Detail::from_frame(&duplicates).map_err(|e| self.error(e))?;
        let total = self.run(&format!(
            "SELECT count(*) FROM {JUDGED} WHERE class = 'duplicate'"
        ))?;
        Ok(ClusterUsage {
            groups: out,
            users,
            user_names,
            turns,
            details,
            duplicates,
            duplicates_total: total.first().map_or(0, |r| count(r, 0)),
            rows_by_source,
        })
    }

    /// The plain rows of the groups whose provider, model and status are
    /// `bad` (as normalised frames, up to the list limit), and how many
    /// there are.
    pub(super) fn bad_rows(&self, bad: &[RawVerdictKey<'_>]) -> Result<(DataFrame, u64)> {
        let lit = |v: Option<&str>| v.map_or("NULL".to_string(), sql_text);
        let any = bad
            .iter()
            .map(|(p, m, s)| {
                format!(
                    "(NULLIF(`{PROVIDER}`, '') <=> {} AND NULLIF(`{MODEL}`, '') <=> {} AND NULLIF(`{STATUS}`, '') <=> {})",
                    lit(*p),
                    lit(*m),
                    lit(*s)
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let filter = format!("class = 'plain' AND ({any})");
        let blocks = self.blocks()?;
        let rows = self.rows(&filter, Some(self.cluster.engine.list_limit), &blocks)?;
        let total = self.run(&format!("SELECT count(*) FROM {JUDGED} WHERE {filter}"))?;
        Ok((rows, total.first().map_or(0, |r| count(r, 0))))
    }

    /// Per (source, split start): the rows, the first row id, and the rows
    /// of the source's earlier splits.
    fn blocks(&self) -> Result<Blocks> {
        let mut out = BTreeMap::new();
        for r in self.run(&format!(
            "SELECT src, blk, count(*), min(mid) FROM {JUDGED} GROUP BY src, blk"
        ))? {
            out.insert((index(&r, 0), int(&r, 1)), (count(&r, 2), int(&r, 3), 0u64));
        }
        let mut before = (usize::MAX, 0u64);
        for ((src, _), (n, _, earlier)) in out.iter_mut() {
            if before.0 != *src {
                before = (*src, 0);
            }
            *earlier = before.1;
            before.1 += *n;
        }
        Ok(out)
    }

    /// The rows that match `filter`, in file order (the first `limit`),
    /// as normalised frames of their sources, concatenated.
    fn rows(&self, filter: &str, limit: Option<u64>, blocks: &Blocks) -> Result<DataFrame> {
        let cols: Vec<String> = row_columns().iter().map(|c| format!("`{c}`")).collect();
        let limit = limit.map_or(String::new(), |n| format!(" LIMIT {n}"));
        let rows = self.run(&format!(
            "SELECT {} FROM {JUDGED} WHERE {filter} ORDER BY src, blk, mid{limit}",
            cols.join(", ")
        ))?;
        let mut by_source: BTreeMap<usize, Vec<&Row>> = BTreeMap::new();
        for r in &rows {
            by_source.entry(index(r, 0)).or_default().push(r);
        }
        let mut frames = Vec::new();
        for (src, rows) in by_source {
            let frame = self.frame(src, &rows, blocks)?;
            frames.push(frame.lazy());
        }
        if frames.is_empty() {
            // No such rows: the normalised columns, on no rows.
            return self.normal(0, self.empty_source(0));
        }
        concat(frames, UnionArgs::default())
            .and_then(LazyFrame::collect)
            .map_err(|e| self.error(e))
    }

    fn empty_source(&self, src: usize) -> DataFrame {
        DataFrame::empty_with_schema(&polars_schema(&self.schemas[src]))
    }

    /// Source `src`'s rows rebuilt in the types the file holds, numbered,
    /// then normalised as a local frame.
    fn frame(&self, src: usize, rows: &[&Row], blocks: &Blocks) -> Result<DataFrame> {
        let kinds = &self.schemas[src];
        // Column places in the rows of [`Job::rows`].
        let cols = row_columns();
        let at = |name: &str| -> usize {
            cols.iter()
                .position(|c| c == name)
                .expect("a column of the query")
        };
        let mut columns: Vec<Column> = Vec::new();
        let positions: Vec<u64> = rows
            .iter()
            .map(|r| {
                let (blk, mid) = (int(r, 1), int(r, 2));
                let (_, first, earlier) = blocks.get(&(src, blk)).copied().unwrap_or((0, mid, 0));
                earlier + (mid - first).max(0).cast_unsigned()
            })
            .collect();
        columns.push(Column::new(super::POSITION.into(), positions));
        for (name, k) in kinds {
            let name = name.as_str();
            let series = if name == TIMESTAMP {
                match k {
                    Kind::Instant | Kind::WallTime => {
                        let us: Vec<Option<i64>> =
                            rows.iter().map(|r| opt_int(r, at("ts_us"))).collect();
                        Series::new(name.into(), us)
                            .cast(&polars_type(*k))
                            .map_err(|e| self.error(e))?
                    }
                    Kind::Date => {
                        let days: Vec<Option<i32>> = rows
                            .iter()
                            .map(|r| {
                                opt_int(r, at("ts_us"))
                                    .map(|us| us.div_euclid(86_400_000_000) as i32)
                            })
                            .collect();
                        Series::new(name.into(), days)
                            .cast(&DataType::Date)
                            .map_err(|e| self.error(e))?
                    }
                    Kind::Text => {
                        let t: Vec<Option<String>> =
                            rows.iter().map(|r| text(r, at("ts_s"))).collect();
                        Series::new(name.into(), t)
                    }
                    // A timestamp of another type: normalize names it.
                    _ => Series::new_null(name.into(), rows.len())
                        .cast(&polars_type(*k))
                        .map_err(|e| self.error(e))?,
                }
            } else if name == TOKENS_ESTIMATED {
                match k {
                    Kind::Bool => {
                        let b: Vec<Option<bool>> = rows
                            .iter()
                            .map(|r| match r.get(at("est_b")) {
                                Some(Value::Bool(b)) => Some(*b),
                                _ => None,
                            })
                            .collect();
                        Series::new(name.into(), b)
                    }
                    _ => {
                        let t: Vec<Option<String>> =
                            rows.iter().map(|r| text(r, at("est_s"))).collect();
                        Series::new(name.into(), t)
                    }
                }
            } else if let Some(n) = COUNTS.iter().position(|c| *c == name) {
                match k {
                    Kind::Int => {
                        let v: Vec<Option<i64>> = rows
                            .iter()
                            .map(|r| opt_int(r, at(&format!("c{n}_i"))))
                            .collect();
                        Series::new(name.into(), v)
                    }
                    Kind::Float => {
                        let v: Vec<Option<f64>> = rows
                            .iter()
                            .map(|r| match r.get(at(&format!("c{n}_f"))) {
                                Some(Value::Double(d)) => Some(*d),
                                _ => None,
                            })
                            .collect();
                        Series::new(name.into(), v)
                    }
                    Kind::UInt64 => {
                        let v: Vec<Option<u64>> = rows
                            .iter()
                            .map(|r| text(r, at(&format!("c{n}_s"))).and_then(|t| t.parse().ok()))
                            .collect();
                        Series::new(name.into(), v)
                    }
                    _ => {
                        let t: Vec<Option<String>> = rows
                            .iter()
                            .map(|r| text(r, at(&format!("c{n}_s"))))
                            .collect();
                        Series::new(name.into(), t)
                    }
                }
            } else {
                let t: Vec<Option<String>> = rows.iter().map(|r| text(r, at(name))).collect();
                Series::new(name.into(), t)
            };
            columns.push(series.into_column());
        }
        let df = DataFrame::new_infer_height(columns).map_err(|e| self.error(e))?;
        self.normal(src, df)
    }

    /// A frame of source `src`'s columns, normalised as a local frame.
    fn normal(&self, src: usize, df: DataFrame) -> Result<DataFrame> {
        let schema = df.schema().as_ref().clone();
        normalize(
            src as u32,
            df.lazy(),
            &schema,
            &self.sources[src].url,
            self.insight,
        )?
        .collect()
        .map_err(|e| self.error(e))
    }
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        // The cached rows are the cluster's memory: given back.
        if let Ok(df) = self
            .cluster
            .session
            .sql(&format!("UNCACHE TABLE IF EXISTS {JUDGED}"))
        {
            let _ = df.collect();
        }
    }
}

/// Where a source's rows keep their place: (source, split start) → (rows,
/// the first row id, the rows of the source's earlier splits).
type Blocks = BTreeMap<(usize, i64), (u64, i64, u64)>;

/// The columns [`Job::rows`] asks for, in order.
fn row_columns() -> Vec<String> {
    let mut cols: Vec<String> = vec!["src".into(), "blk".into(), "mid".into()];
    cols.extend(TEXTS.iter().map(ToString::to_string));
    cols.extend(["ts_s", "ts_us", "est_b", "est_s"].map(String::from));
    for n in 0..COUNTS.len() {
        cols.extend([format!("c{n}_i"), format!("c{n}_f"), format!("c{n}_s")]);
    }
    cols
}

/// A count or a sum of counts, which the row checks hold non-negative.
fn count(r: &Row, i: usize) -> u64 {
    int(r, i).max(0).cast_unsigned()
}

/// A source's ordinal, as this binary numbered it in the SQL.
fn index(r: &Row, i: usize) -> usize {
    usize::try_from(int(r, i)).unwrap_or(usize::MAX)
}

fn int(r: &Row, i: usize) -> i64 {
    opt_int(r, i).unwrap_or(0)
}

fn opt_int(r: &Row, i: usize) -> Option<i64> {
    match r.get(i)? {
        Value::Long(v) => Some(*v),
        Value::Integer(v) => Some(i64::from(*v)),
        Value::Short(v) => Some(i64::from(*v)),
        Value::Byte(v) => Some(i64::from(*v)),
        Value::Decimal { value, .. } => value.parse().ok(),
        _ => None,
    }
}

fn text(r: &Row, i: usize) -> Option<String> {
    match r.get(i)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachable_opens_the_urls_host_and_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(reachable(&format!("sc://127.0.0.1:{port}")).is_ok());
        assert!(reachable(&format!("sc://127.0.0.1:{port}/;use_ssl=true")).is_ok());
        drop(listener);
        assert!(reachable(&format!("sc://127.0.0.1:{port}/")).is_err());
    }
}

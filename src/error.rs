//! The one error type, its exit codes, and where in the input it points.

use std::fmt;

/// Exit codes, the contract with CI jobs (DESIGN §8).
pub mod exit {
    pub const OK: i32 = 0;
    pub const BAD_INPUT: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const STORAGE: i32 = 3;
    pub const GATE: i32 = 4;
}

/// Where an error points: `uri`, `uri:row` or `uri:row:column`. Rows count
/// data records from 1 (a CSV's header is not a row); columns are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub uri: String,
    pub row: Option<u64>,
    pub column: Option<String>,
}

impl Location {
    pub fn file(uri: impl Into<String>) -> Self {
        Location {
            uri: uri.into(),
            row: None,
            column: None,
        }
    }

    pub fn cell(uri: impl Into<String>, row: u64, column: impl Into<String>) -> Self {
        Location {
            uri: uri.into(),
            row: Some(row),
            column: Some(column.into()),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.uri)?;
        if let Some(row) = self.row {
            write!(f, ":{row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ":{column}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file is missing, unreadable or not what it claims to be.
    #[error("{at}: {message}")]
    Input {
        at: Location,
        message: String,
        hint: Option<String>,
    },
    /// The policy (or catalog) is invalid.
    #[error("{at}: {message}")]
    Policy {
        at: Location,
        message: String,
        hint: Option<String>,
    },
    /// The command line asks for something impossible.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// Reading or writing storage failed.
    #[error("{url}: {message}")]
    Storage {
        url: String,
        message: String,
        hint: Option<String>,
    },
    /// A `--fail-on` gate tripped; the outputs were published.
    #[error("{message}")]
    Gate { message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(at: Location, message: impl Into<String>) -> Self {
        Error::Input {
            at,
            message: message.into(),
            hint: None,
        }
    }

    pub fn policy(at: Location, message: impl Into<String>) -> Self {
        Error::Policy {
            at,
            message: message.into(),
            hint: None,
        }
    }

    pub fn storage(url: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Storage {
            url: url.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the `hint:` line shown under the error.
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        let text = Some(text.into());
        match &mut self {
            Error::Input { hint, .. }
            | Error::Policy { hint, .. }
            | Error::Usage { hint, .. }
            | Error::Storage { hint, .. } => *hint = text,
            Error::Gate { .. } => {}
        }
        self
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Input { hint, .. }
            | Error::Policy { hint, .. }
            | Error::Usage { hint, .. }
            | Error::Storage { hint, .. } => hint.as_deref(),
            Error::Gate { .. } => None,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Policy { .. } => exit::BAD_INPUT,
            Error::Usage { .. } => exit::USAGE,
            Error::Storage { .. } => exit::STORAGE,
            Error::Gate { .. } => exit::GATE,
        }
    }

    /// The full text printed on stderr: `error: …` and an optional hint line.
    pub fn report(&self) -> String {
        match self.hint() {
            Some(h) => format!("error: {self}\nhint: {h}\n"),
            None => format!("error: {self}\n"),
        }
    }
}

/// Runs `f`, turning a panic inside it into an input error naming `uri`:
/// the readers we build on (Polars' Parquet and CSV readers) can panic on a
/// damaged file, and a damaged file is bad input, not a crash.
pub fn reading<T>(uri: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(Error::input(
            Location::file(uri),
            format!(
                "cannot read the file: the reader failed on it ({})",
                panic_text(payload.as_ref())
            ),
        )
        .with_hint("the file may be damaged or truncated; check it, or export it again")),
    }
}

/// The message of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_location_and_hint() {
        let e = Error::input(
            Location::cell("billing/focus.csv", 12, "BilledCost"),
            "`12,5` is not a decimal number",
        )
        .with_hint("write amounts with a dot as the decimal separator");
        assert_eq!(
            e.report(),
            "error: billing/focus.csv:12:BilledCost: `12,5` is not a decimal number\n\
             hint: write amounts with a dot as the decimal separator\n"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::storage("s3://b/k", "denied").exit_code(), 3);
    }
}

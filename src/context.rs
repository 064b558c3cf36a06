//! The run's world: the store every byte goes through, and the clock.
//! Nothing else in the pipeline touches the file system, and nothing else
//! reads the clock — which is read only to choose `--period previous`;
//! every date in the outputs comes from the period or `--as-of` — so a test
//! hands it a `memory://` store and a fixed day. The progress display rides
//! along; it writes to stderr only.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Days, NaiveDate};

use crate::load::store::Store;
use crate::progress::Progress;

#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    /// Progress bars and stage timings on stderr (silent by default).
    pub progress: Progress,
    /// Today's date; `None` reads the system clock when asked.
    today: Option<NaiveDate>,
}

impl Context {
    pub fn new(store: Store) -> Context {
        Context {
            store,
            progress: Progress::default(),
            today: None,
        }
    }

    /// The same world, showing `progress`.
    pub fn with_progress(&self, progress: Progress) -> Context {
        Context {
            progress,
            ..self.clone()
        }
    }

    /// The same world on a fixed day.
    pub fn on(&self, today: NaiveDate) -> Context {
        Context {
            today: Some(today),
            ..self.clone()
        }
    }

    /// Today in UTC: the one read of the clock, for `--period previous`.
    // The one sanctioned read (clippy.toml forbids it elsewhere): it picks
    // the month, and no output holds it.
    #[allow(clippy::disallowed_methods)]
    pub fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(|| {
            let days = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 86_400);
            NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch") + Days::new(days)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_fixed_or_the_clocks() {
        let ctx = Context::new(Store::new());
        assert!(ctx.today() > NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(ctx.on(day).today(), day);
    }
}

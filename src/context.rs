//! The run's world: the store every byte goes through and the date the run
//! is "as of". Nothing else in the pipeline touches the file system or the
//! clock, so a test can hand it a `memory://` store and a fixed date.
//! The progress display rides along; it writes to stderr only.

use chrono::NaiveDate;

use crate::progress::Progress;
use crate::load::store::Store;

#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    /// The day the run speaks for (issue date, budget projection); `None`
    /// means the close of the period.
    pub as_of: Option<NaiveDate>,
    /// Progress bars and stage timings on stderr (silent by default).
    pub progress: Progress,
}

impl Context {
    pub fn new(store: Store) -> Context {
        Context {
            store,
            as_of: None,
            progress: Progress::default(),
        }
    }

    /// The same world, showing `progress`.
    pub fn with_progress(&self, progress: Progress) -> Context {
        Context {
            progress,
            ..self.clone()
        }
    }
}

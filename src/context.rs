//! The run's world: the store every byte goes through. Nothing else in the
//! pipeline touches the file system, and nothing reads the clock (dates
//! come from the period or `--as-of`), so a test hands it a `memory://`
//! store. The progress display rides along; it writes to stderr only.

use crate::load::store::Store;
use crate::progress::Progress;

#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    /// Progress bars and stage timings on stderr (silent by default).
    pub progress: Progress,
}

impl Context {
    pub fn new(store: Store) -> Context {
        Context {
            store,
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

//! What a person watching a run sees on stderr while it works: one progress
//! bar per stage on a terminal (nothing when stderr is not a terminal, or
//! with `--quiet`), and with `--timings` each stage's wall time.
//!
//! It owns no output and reads no date: the clock here is
//! [`std::time::Instant`], and what it measures only ever goes to stderr,
//! so it cannot change a published byte.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The run's progress display; cloning shares it. [`Progress::default`]
/// shows and times nothing (tests, library callers).
#[derive(Clone, Default)]
pub struct Progress {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// Bars, when stderr is a terminal and the run is not quiet.
    bars: Option<MultiProgress>,
    /// Print each stage's time when it ends, and the total.
    timings: bool,
    start: Instant,
    stages: Mutex<Vec<(String, Duration)>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field(
                "bars",
                &self.inner.as_ref().is_some_and(|i| i.bars.is_some()),
            )
            .field("timings", &self.inner.as_ref().is_some_and(|i| i.timings))
            .finish()
    }
}

impl Progress {
    /// Bars when stderr is a terminal (and `TERM` is not `dumb`) and the
    /// run is not `quiet`; stage times when `timings`.
    pub fn for_stderr(quiet: bool, timings: bool) -> Progress {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Progress::new(!quiet && terminal, timings)
    }

    pub fn new(bars: bool, timings: bool) -> Progress {
        if !bars && !timings {
            return Progress::default();
        }
        Progress {
            inner: Some(Arc::new(Inner {
                bars: bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
                timings,
                start: Instant::now(),
                stages: Mutex::new(Vec::new()),
            })),
        }
    }

    /// Starts a stage: a spinner until [`Stage::set_total`] makes it a bar.
    /// The stage ends when the value is dropped.
    pub fn stage(&self, name: &str) -> Stage {
        let bar = self
            .inner
            .as_ref()
            .and_then(|i| i.bars.as_ref())
            .map(|multi| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner_style());
                bar.set_prefix(name.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            });
        Stage {
            progress: self.clone(),
            name: name.to_string(),
            start: Instant::now(),
            bar,
        }
    }

    /// The stages ended so far, with their wall times, in order.
    pub fn stages(&self) -> Vec<(String, Duration)> {
        self.inner
            .as_ref()
            .map(|i| i.stages.lock().map(|s| s.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// With `--timings`, the line giving the whole run's time.
    pub fn finish(&self) {
        if let Some(inner) = &self.inner
            && inner.timings
        {
            inner.print(&timing_line("total", inner.start.elapsed()));
        }
    }

    fn record(&self, name: &str, elapsed: Duration) {
        if let Some(inner) = &self.inner {
            if let Ok(mut stages) = inner.stages.lock() {
                stages.push((name.to_string(), elapsed));
            }
            if inner.timings {
                inner.print(&timing_line(name, elapsed));
            }
        }
    }
}

impl Inner {
    fn print(&self, line: &str) {
        match &self.bars {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

fn timing_line(name: &str, elapsed: Duration) -> String {
    format!("timing: {name:<34} {:>8.3} s", elapsed.as_secs_f64())
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:<34} {elapsed:>4}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn counting_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:<34} {human_pos:>12} {elapsed:>4}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:<34} [{bar:30}] {human_pos:>12}/{human_len} {elapsed:>4}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// One stage of a run; its time is recorded when it is dropped.
pub struct Stage {
    progress: Progress,
    name: String,
    start: Instant,
    bar: Option<ProgressBar>,
}

impl Stage {
    /// How many units (rows, invoices) the stage will count: a bar.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_style(bar_style());
        }
    }

    /// A handle that counts for this stage from anywhere (a callback, a
    /// worker thread), for as long as it lives; the spinner shows the count
    /// (a bar once [`Stage::set_total`] gave the whole).
    pub fn counter(&self) -> Counter {
        if let Some(bar) = &self.bar
            && bar.length().is_none()
        {
            bar.set_style(counting_style());
        }
        Counter {
            bar: self.bar.clone(),
        }
    }

    /// Ends the stage now.
    pub fn done(self) {}
}

/// Counts units done for a [`Stage`]; cheap to clone, `Send` and `Sync`.
#[derive(Clone, Default)]
pub struct Counter {
    bar: Option<ProgressBar>,
}

impl Counter {
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.progress.record(&self.name, self.start.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stages_in_order_and_shows_nothing_by_default() {
        let quiet = Progress::default();
        quiet.stage("a").done();
        assert!(quiet.stages().is_empty());

        let timed = Progress::new(false, false);
        assert!(timed.stages().is_empty());

        let p = Progress {
            inner: Some(Arc::new(Inner {
                bars: None,
                timings: false,
                start: Instant::now(),
                stages: Mutex::new(Vec::new()),
            })),
        };
        let s = p.stage("first");
        s.set_total(3);
        s.counter().inc(3);
        drop(s);
        p.stage("second").done();
        let names: Vec<String> = p.stages().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["first", "second"]);
    }
}

//! `chargeback validate`: every check of a run, nothing written.

use super::close::{MonthRequest, close_month};
use super::run::{parse_month, report, verdict};
use crate::cli::MonthArgs;
use crate::context::Context;
use crate::error::Result;
use crate::progress::Progress;

pub fn run(ctx: &Context, args: &MonthArgs) -> Result<()> {
    let (period, as_of) = parse_month(args)?;
    let ctx = &ctx.with_progress(Progress::for_stderr(args.quiet, args.timings));
    let closed = close_month(
        ctx,
        &MonthRequest {
            config: &args.config,
            period,
            as_of,
        },
    )?;
    ctx.progress.finish();
    if !args.quiet {
        super::say(&report(&closed, &verdict(&closed, period)));
    }
    Ok(())
}

//! `chargeback validate`: every check of a run, nothing written — load,
//! compute, and every template compiled against the month's data.

use super::run::{parse_month, report, verdict};
use crate::cli::ValidateArgs;
use crate::compute::compute;
use crate::context::Context;
use crate::error::Result;
use crate::load::{load, read_policy};
use crate::progress::Progress;
use crate::render::check;
use crate::render::templates::Templates;

pub fn run(ctx: &Context, args: &ValidateArgs) -> Result<()> {
    let json = args.json;
    let args = &args.month;
    let (period, as_of) = parse_month(ctx, args)?;
    let ctx = &ctx.with_progress(Progress::for_stderr(args.quiet, args.timings));
    let policy = read_policy(ctx, &args.config)?;
    let inputs = load(ctx, &policy.policy, period, as_of)?;
    let templates = Templates::load(ctx, policy.policy.output.templates.as_deref())?;
    let stage = ctx.progress.stage("reconcile, attribute, charge back");
    let month = compute(&inputs, &policy.policy, as_of)?;
    stage.done();
    check(&month, &templates, &ctx.progress)?;
    ctx.progress.finish();
    if json {
        super::say(&super::summary::month("validate", &month, None, &[]));
    } else if !args.quiet {
        super::say(&report(&month, &verdict(&month, period)));
    }
    Ok(())
}

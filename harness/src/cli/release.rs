//! `harness validate-release`: may image B replace image A in a role?

use std::process::ExitCode;

use harness::matrix;
use harness::runner::new_run_id;
use harness::session::{self};
use harness::{out, outln};
use runtime::stop::{self};

use super::args::{JudgeArgs, ProfileArgs, RunArgs};
use super::Outcome;
use super::{interrupted, result_line, selected};

pub async fn validate_release(
    profile: ProfileArgs,
    candidates: harness::release::Candidates,
    calibrate: bool,
    args: RunArgs,
    judge: JudgeArgs,
) -> Outcome {
    let mut settings = judge.settings()?;
    let role_plans: Vec<harness::plan::Plan> = selected(args.filter.as_deref())?
        .into_iter()
        .filter(|p| p.runs_role(&candidates.role))
        .collect();
    if role_plans.is_empty() {
        return Err(format!("no plan runs the role `{}`", candidates.role).into());
    }
    let (selected, shard) = args.shard.select(role_plans, None)?;
    if let Some(shard) = &shard {
        // Each of N shards judges at α/N: the N answers together keep the false-alarm rate.
        settings.false_alarm_rate /= f64::from(shard.count);
    }
    let role_plans: Vec<&harness::plan::Plan> = selected.iter().collect();
    let options = args.options_or(matrix::recommended_repeat(&role_plans, &settings));
    let run_id = new_run_id();
    let _signals = stop::listen();
    let ctx = session::open(&profile.choice(), run_id.clone()).await?;
    if let Some(shard) = &shard {
        shard.write(&ctx.report_dir)?;
        outln!(
            "shard {}: {} of the role's {} plans, balanced by {}, judged at a false-alarm rate of {} (the answer is the release's when every shard may replace)",
            shard.shard,
            shard.names.len(),
            shard.total,
            shard.balanced_by,
            settings.false_alarm_rate
        );
    }
    outln!(
        "run {run_id}: {} plan(s) of role `{}` × {} with A = {} and B = {}{}",
        role_plans.len(),
        candidates.role,
        options.repeat,
        candidates.image_a,
        candidates.image_b,
        if calibrate {
            ", and A again (calibration)"
        } else {
            ""
        }
    );
    let work = harness::release::validate(
        &ctx,
        &selected,
        &candidates,
        options,
        &settings,
        match (calibrate, judge.calibration()?) {
            (true, _) => harness::release::Calibrate::Run,
            (false, Some(given)) => harness::release::Calibrate::From(given),
            (false, None) => harness::release::Calibrate::No,
        },
        |r| outln!("{}", result_line(r)),
    );
    let validation = match stop::guarded(&ctx.docker, &ctx.run_id, work).await {
        Ok(validation) => validation?,
        Err(stopped) => return Ok(interrupted(stopped)),
    };
    out!(
        "{}",
        report::compare::render::terminal(&validation.comparison)
    );
    if let Some((where_, noise)) = validation.calibration.as_ref().and_then(|c| c.widest()) {
        outln!("calibration: widest noise floor ×{noise:.2} ({where_})");
    }
    outln!("{}", validation.answer.line);
    outln!(
        "reports in {} (report.html, compare.html, compare.md; results in A/ and B/)",
        ctx.report_dir.display()
    );
    Ok(ExitCode::from(validation.answer.exit_code()))
}

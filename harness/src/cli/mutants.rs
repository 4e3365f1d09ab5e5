//! `harness mutants`: every mutant in every plan of its role, and the kill matrix.

use std::process::ExitCode;

use harness::outln;
use harness::plan::plans;
use harness::runner::new_run_id;
use harness::session::{self};
use runtime::stop::{self};

use super::args::{ProfileArgs, ShardArgs};
use super::interrupted;
use super::Outcome;

pub async fn mutants(
    profile: ProfileArgs,
    filter: Option<String>,
    jobs: usize,
    shard: ShardArgs,
) -> Outcome {
    let root = session::repo_root();
    let plans = plans(&root.join("scenarios"))?;
    let all = harness::mutants::discover(&root)?;
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|m| filter.as_ref().is_none_or(|f| m.name.contains(f.as_str())))
        .collect();
    if chosen.is_empty() {
        return Err("no mutant's name matches (see fixtures/mutants/)".into());
    }
    // A shard takes whole mutants, each weighing its plans (their durations, else 1 each).
    let record = match shard.shard {
        Some(k) => {
            let weights = shard.weights(None)?;
            let items: Vec<(String, u64)> = chosen
                .iter()
                .map(|m| {
                    let weight = m
                        .plans(&plans)
                        .iter()
                        .map(|p| weights.of(&p.test_name, p.skip.is_some()))
                        .sum();
                    (m.name.clone(), weight)
                })
                .collect();
            let split = harness::shard::split(&items, k.count);
            Some(harness::shard::Record::of(
                &split,
                k,
                "mutants",
                &weights.balanced_by,
            ))
        }
        None => None,
    };
    let chosen: Vec<_> = chosen
        .into_iter()
        .filter(|m| record.as_ref().is_none_or(|r| r.names.contains(&m.name)))
        .collect();
    let run_id = new_run_id();
    let _signals = stop::listen();
    let ctx = session::open(&profile.choice(), run_id.clone()).await?;
    if let Some(record) = &record {
        record.write(&ctx.report_dir)?;
        outln!(
            "shard {}: {} of {} mutants, balanced by {}",
            record.shard,
            record.names.len(),
            record.total,
            record.balanced_by
        );
    }
    let count: usize = chosen.iter().map(|m| m.plans(&plans).len()).sum();
    outln!(
        "run {run_id}: {} mutant(s) in {count} plan(s)",
        chosen.len()
    );
    let work = harness::mutants::run_matrix(&ctx, &chosen, &plans, jobs, |mutant, result| {
        let verdict = harness::mutants::Verdict::of(result);
        outln!("{:<40} {:<48} {}", mutant.name, result.test, verdict.cell());
    });
    let matrix = match stop::guarded(&ctx.docker, &ctx.run_id, work).await {
        Ok(matrix) => matrix?,
        Err(stopped) => return Ok(interrupted(stopped)),
    };
    outln!("\n{}", matrix.render(harness::mutants::breaks(&chosen)));
    let misplaced: Vec<String> = chosen
        .iter()
        .filter_map(|m| {
            let verdicts = matrix.mutants.get(&m.name).cloned().unwrap_or_default();
            harness::mutants::check_caught(m, &verdicts).err()
        })
        .collect();
    for problem in &misplaced {
        outln!("{problem}");
    }
    report::write_mutants(&ctx.report_dir, &run_id, &matrix)?;
    let (caught, all) = matrix.score();
    Ok(if caught == all && misplaced.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

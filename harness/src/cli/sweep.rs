//! `harness sweep`: what processes that are gone left behind.

use std::process::ExitCode;

use harness::runner::new_run_id;
use harness::session;
use harness::{errln, outln};

use super::args::ProfileArgs;
use super::Outcome;

/// `harness sweep`: leftovers of processes that are gone, one run's, or (`--all`) everything.
/// Both daemons plans may run on are swept: the harness's own and the rootless one
/// ([`runtime::isolation`]), when it answers.
pub async fn sweep(run: Option<String>, all: bool, labels: Vec<String>) -> Outcome {
    let mut daemons = vec![("", runtime::connect().await?)];
    if let Some(rootless) = runtime::isolation::rootless_daemon().await {
        daemons.push((" (rootless daemon)", rootless));
    }
    for (which, docker) in daemons {
        sweep_daemon(&docker, which, run.as_deref(), all, &labels).await?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn sweep_daemon(
    docker: &bollard::Docker,
    which: &str,
    run: Option<&str>,
    all: bool,
    labels: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    if run.is_some() || all {
        if all {
            errln!("warning: --all removes every labelled resource on this daemon{which}, including those of runs still going on");
        }
        let (swept, dirs) = runtime::sweep(docker, run).await?;
        outln!(
            "removed {swept}{which}, {} private director(ies) and workspace file system(s)",
            dirs.len()
        );
        return Ok(());
    }
    let report = runtime::sweep_gone(docker, labels).await?;
    for (owner, swept) in &report.removed {
        outln!("removed {swept} of {owner}{which}: its process is gone");
    }
    for (owner, why) in &report.kept {
        outln!(
            "left {owner} alone: {why} (`--run {}` removes it)",
            owner.run
        );
    }
    for dir in &report.private_dirs {
        outln!("removed {} (private, of a gone process)", dir.display());
    }
    if report.removed.is_empty() {
        outln!("nothing to remove{which}");
    }
    Ok(())
}

/// `harness images`: the profile's images, built or loaded when missing.
pub async fn images(profile: ProfileArgs) -> Outcome {
    session::open(&profile.choice(), new_run_id()).await?;
    outln!("images for profile `{}` are present", profile.profile);
    Ok(ExitCode::SUCCESS)
}

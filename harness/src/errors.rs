//! The harness's own errors, named after the action that failed (the lower crates have theirs).
//!
//! Messages are lowercase and name the offending file, value or object. Errors raised while a
//! scenario runs are harness or infrastructure failures: they become an `Error` status, never a
//! `Fail` (which is reserved for a plugin breaking a promise).

use std::path::PathBuf;

use thiserror::Error;

pub use oci::errors::*;
pub use report::errors::*;
pub use runtime::errors::*;
pub use scenario::errors::*;

/// A mutant's description (`fixtures/mutants/<name>/mutant.yaml`) could not be read.
#[derive(Debug, Error)]
pub enum MutantLoadError {
    #[error("cannot list the mutants in {path}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] YamlReadError),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Release validation could not be carried out (the harness's problem, not the release's).
#[derive(Debug, Error)]
pub enum ReleaseValidationError {
    #[error(transparent)]
    Profile(#[from] ProfileLoadError),
    #[error(transparent)]
    Report(#[from] ReportWriteError),
    #[error(transparent)]
    Calibration(#[from] CompareWriteError),
}

/// The offline images could not be built or loaded.
#[derive(Debug, Error)]
pub enum ImageBuildError {
    #[error("cannot run {script}")]
    Spawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{script} printed no recipe key on stdout for role `{role}`'s image {image}")]
    NoRecipe {
        script: PathBuf,
        role: String,
        image: String,
    },
    #[error("{script} exited with {status}")]
    Failed {
        script: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("image {image} for role `{role}` is not present in the docker daemon (the `{profile}` profile never pulls)")]
    Missing {
        role: String,
        image: String,
        profile: String,
    },
    #[error("cannot copy image {image} for role `{role}` to the plans' daemon: {message}")]
    Copy {
        role: String,
        image: String,
        message: String,
    },
    #[error("cannot pull image {image} for role `{role}`: {message}")]
    Pull {
        role: String,
        image: String,
        message: String,
    },
}

/// A shard's record (`shard.json` in its run directory) could not be written or read.
#[derive(Debug, Error)]
pub enum ShardRecordError {
    #[error("cannot write the shard record {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the shard record {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the shard record {path} is not one the harness wrote: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Shard runs could not be merged into one matrix (`harness report`, `compare`, a baseline).
#[derive(Debug, Error)]
pub enum ShardMergeError {
    #[error(transparent)]
    Record(#[from] ShardRecordError),
    #[error("cannot merge shard {shard} with {b}: shard {shard} is {a} already")]
    SameShard { shard: String, a: String, b: String },
    #[error("cannot merge: shard {shard} is missing (given: {given}); run it or pass its run directory too")]
    Missing { shard: String, given: String },
    #[error("cannot merge shards of different plan lists: {a} is shard {a_shard} of {a_total} plans, {b} is shard {b_shard} of {b_total} (a different filter, scenario set or shard count)")]
    DifferentLists {
        a: String,
        a_shard: String,
        a_total: usize,
        b: String,
        b_shard: String,
        b_total: usize,
    },
    #[error("cannot merge shards split differently: {a} was balanced by {a_by}, {b} by {b_by} (give every shard the same --shard-by)")]
    DifferentSplits {
        a: String,
        a_by: String,
        b: String,
        b_by: String,
    },
    #[error("cannot merge: plan {plan} is in both {a} and {b}")]
    Overlap { plan: String, a: String, b: String },
    #[error("cannot merge: {run} ran plan {plan}, not one of shard {shard}'s")]
    Foreign {
        plan: String,
        run: String,
        shard: String,
    },
    #[error("cannot merge {run}, which is no shard, with the shards of a split ({shard_run} is shard {shard})")]
    NotAShard {
        run: String,
        shard_run: String,
        shard: String,
    },
    #[error("{run} is only shard {shard} of its matrix: merge every shard first (`harness report SHARD_DIR… --out MERGED`) and use MERGED")]
    Partial { run: String, shard: String },
}

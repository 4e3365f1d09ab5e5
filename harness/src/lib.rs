//! Conformance harness for container-image build plugins: plans, running them, what they did and
//! whether it keeps the promises, many plans at once, mutants, release validation, and the
//! `harness` CLI (`main.rs`).
//!
//! The data path reads one way, through the crates below this one (ARCHITECTURE.md):
//! [`scenario`] → [`plan`] (scenario × builder) → [`runtime`] (containers) → artifacts
//! ([`oci`]: archives, registries, workspaces) → [`assertions`] and [`accounting`] → results
//! ([`model`]) → reports ([`report`]). [`runner`] drives it for one plan, [`matrix`] for many.

pub mod accounting;
pub mod assertions;
pub mod errors;
pub mod expectation;
pub mod images;
pub mod ledger;
pub mod matrix;
pub mod mutants;
pub mod plan;
pub mod progress;
pub mod release;
pub mod runner;
pub mod session;
pub mod shard;

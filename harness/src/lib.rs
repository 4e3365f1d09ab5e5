//! Conformance harness for container-image build plugins.
//!
//! The data path reads one way: [`scenario`] → [`plan`] (scenario × builder) → [`runtime`]
//! (containers) → artifacts ([`archive`], [`registry`]) → [`assertions`] → [`result`] →
//! [`report`]. [`runner`] drives it for one plan. [`runs`] reads finished runs back and
//! [`compare`] compares two of them. [`workspace`] keeps reads of what plugins wrote inside
//! their workspace.

pub mod accounting;
pub mod archive;
pub mod assertions;
pub mod compare;
pub mod errors;
pub mod expectation;
pub mod images;
pub mod matrix;
pub mod mutants;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod redact;
pub mod registry;
pub mod release;
pub mod report;
pub mod result;
pub mod runner;
pub mod runs;
pub mod runtime;
pub mod scenario;
pub mod session;
pub mod stop;
pub mod timings;
pub mod tls;
pub mod workspace;

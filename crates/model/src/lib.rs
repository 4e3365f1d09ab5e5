//! The result model of the conformance harness: what a plan's run came to ([`result`]) and what
//! the registries and the shared daemon held at each reading ([`inventory`]). Plain data with
//! its JSON shape: every crate above reads or writes it; it knows nothing of containers,
//! archives or reports.

pub mod claims;
pub mod inventory;
pub mod result;

//! The claims ledger: every sentence of the documentation that promises behaviour of the Build
//! and Push steps (quoted word for word, with its page and section), the contradictions between
//! pages, and for each claim either the scenarios that check it or why none does.
//!
//! [`Ledger::load`] reads and checks the ledger by itself; [`check`] holds it against the
//! scenarios' `claim:` citations; [`view`] adds what a run's results showed. The crate reads
//! files and data only: it never runs anything.

mod coverage;
pub mod errors;
pub mod examples;
mod ledger;

pub use coverage::{check, topics_markdown, view, Citations, Citing};
pub use ledger::{normalised, Claim, Explanation, Ledger, Page, Position, LEDGER_VERSION, TOPICS};

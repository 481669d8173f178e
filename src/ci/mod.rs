//! CI at run time: environment detection, commit statuses, and CI-native output (log
//! groups, annotations, job summaries, JUnit) made from the run summary the scheduler
//! returns ([`crate::builder::summary::RunSummary`]).
//!
//! The pipelines themselves are written by [`crate::generate`].

pub mod env;
pub mod output;
pub mod status;
pub mod trigger;

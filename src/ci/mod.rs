//! CI integration: environment detection, commit statuses, CI-native output and the run
//! summary they are made from.

pub mod env;
pub mod output;
pub mod status;
pub mod summary;

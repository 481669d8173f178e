//! CI integration: environment detection, commit statuses, CI-native output and the run
//! summary they are made from; pipeline generators for GitLab and GitHub.

pub mod check;
pub mod env;
pub mod github;
pub mod gitlab;
pub mod output;
pub mod settings;
pub mod status;
pub mod summary;
#[cfg(test)]
mod testutil;
mod yaml;

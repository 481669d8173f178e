//! CI integration: pipeline generators for GitLab and GitHub.

pub mod check;
pub mod github;
pub mod gitlab;
pub mod settings;
mod yaml;
#[cfg(test)]
mod testutil;

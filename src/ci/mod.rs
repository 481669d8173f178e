//! CI integration: pipeline generators for GitLab and GitHub.

pub mod check;
pub mod github;
pub mod gitlab;
pub mod settings;
#[cfg(test)]
mod testutil;
mod yaml;

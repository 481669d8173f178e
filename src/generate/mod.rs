//! Pipeline generators: the CI files stackci writes for a stack (a GitLab child pipeline,
//! a GitHub workflow), rendered as pure functions of the stack, its plan and the stack's
//! `ci:` settings ([`crate::stack::settings::CiSettings`]), and `--check` for committed files.
//!
//! What runs inside those pipelines (environment detection, commit statuses, CI-native
//! output) is [`crate::ci`].

pub mod check;
pub mod github;
pub mod gitlab;
pub mod setup;
#[cfg(test)]
pub(crate) mod testutil;
mod yaml;

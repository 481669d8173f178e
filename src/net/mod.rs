//! What every network client of stackci shares: the secret type, the retry policy, the
//! process-wide tokio runtime, and URL credential masking.
//!
//! - [`secret`]: [`Secret`] holds a password or token; it never prints its value and can
//!   [`Secret::scrub`] it out of a server's or transport's message.
//! - [`retry`]: [`Retry`], one policy (attempt limit, exponential backoff with jitter, a
//!   cap, `Retry-After` honoured) for registry requests, commit statuses, S3 and index
//!   compare-and-swap.
//! - [`runtime`]: one lazily started multi-thread runtime that the synchronous mirror and
//!   status APIs block on; never call them from inside an async task.
//! - [`redact`]: `user:password@` in URLs, found and masked before a URL is shown.
//!
//! The protocols themselves (OCI distribution, S3, GitHub and GitLab APIs) live with their
//! users in `mirror/` and `ci/`; this module holds only what they have in common.

pub mod redact;
pub mod retry;
pub mod runtime;
pub mod secret;

pub use retry::Retry;
pub use secret::Secret;

//! [`Secret`]: the one type that holds a password or token (registry passwords and bearer
//! tokens, GitHub and GitLab API tokens).
//!
//! A secret cannot leak by accident: `Debug` and `Display` print `***`, reading the value
//! takes an explicit [`Secret::expose`], headers built from it are marked sensitive (so
//! reqwest and hyper never log them), and [`Secret::scrub`] removes it from text that may
//! echo a request (a server's error body, a transport error chain) before that text goes
//! into an error. S3 credentials never pass through stackci: the AWS SDK reads and holds
//! them in its own redacting types.

use std::fmt;

use reqwest::header::HeaderValue;

/// What a secret prints as, and what [`Secret::scrub`] puts in its place.
pub const MASK: &str = "***";

/// A password or token. `Debug` prints `Secret(***)` and `Display` prints `***`; only
/// [`Secret::expose`] gives the value, to put it on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value as given (a password may legitimately end in a space).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself; use it only to build the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the value replaced by [`MASK`]; `text` unchanged
    /// when the value is empty.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, MASK)
        }
    }

    /// A header value `prefix` + the secret (`"Bearer "` + token, or `""` + token), marked
    /// sensitive; `None` when the secret holds characters a header cannot carry.
    pub fn header(&self, prefix: &str) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.0)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** Secret(***) Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn scrubs_every_occurrence() {
        let s = Secret::new("s3cr3t-value");
        assert_eq!(
            s.scrub("Bearer s3cr3t-value! again: s3cr3t-value"),
            "Bearer ***! again: ***"
        );
        assert_eq!(s.scrub("nothing here"), "nothing here");
        assert_eq!(Secret::new("").scrub("text"), "text");
    }

    #[test]
    fn headers_are_sensitive() {
        let s = Secret::new("tok");
        let h = s.header("Bearer ").unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Bearer tok");
        assert!(!format!("{h:?}").contains("tok"));
        assert!(Secret::new("a\nb").header("").is_none());
    }
}

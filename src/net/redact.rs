//! Credentials in URLs: found and masked before a URL is shown anywhere.
//!
//! `oci://user:token@host/repo` or `--s3-endpoint http://key:secret@host` put a secret where
//! messages, logs and `--json` show the URL. Every place that displays a URL given by the
//! user passes it through [`url`]; backends refuse such URLs (see [`userinfo`]) and say where
//! credentials belong instead.

use std::borrow::Cow;

/// What replaces the `user:password` part of a URL.
pub const MASK: &str = "***";

/// The `user[:password]` part of `SCHEME://[USERINFO@]HOST/...`, if any: everything before
/// the last `@` of the authority (which ends at the first `/`, `?` or `#`). An `@sha256:`
/// is a digest, not credentials (`docker://alpine@sha256:...`).
pub fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority
        .rfind('@')
        .filter(|&at| !authority[at + 1..].starts_with("sha256:"))
        .map(|at| &authority[..at])
}

/// `url` with its `user[:password]` part replaced by [`MASK`]; unchanged when it has none.
pub fn url(url: &str) -> Cow<'_, str> {
    match userinfo(url) {
        None => Cow::Borrowed(url),
        Some(info) => {
            let start = url.find("://").map_or(0, |i| i + 3);
            Cow::Owned(format!("{}{MASK}{}", &url[..start], &url[start + info.len()..]))
        }
    }
}

/// Why a registry URL with credentials is refused, and where they go instead.
pub const REGISTRY_HINT: &str =
    "put them in ~/.docker/config.json (docker login) or STACKCI_REGISTRY_USERNAME/_PASSWORD";

/// Why an S3 URL or endpoint with credentials is refused, and where they go instead.
pub const S3_HINT: &str =
    "S3 credentials come from the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or the CI's role";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_masked_and_nothing_else() {
        assert_eq!(url("oci://u:s3cr3t@ghcr.io/x/y:t"), "oci://***@ghcr.io/x/y:t");
        assert_eq!(url("http://key:p@ss@minio:9000/b"), "http://***@minio:9000/b");
        assert_eq!(url("https://token@host"), "https://***@host");
        assert_eq!(url("s3://k:s@bucket/prefix"), "s3://***@bucket/prefix");
        for plain in [
            "oci://ghcr.io/x/y@sha256:abcd",
            "file:///tmp/a@b",
            "relative/dir@x",
            "http://host:9000/a?x=@y",
        ] {
            assert_eq!(url(plain), plain);
            assert_eq!(userinfo(plain), None);
        }
        assert_eq!(userinfo("oci://u:p@h/r"), Some("u:p"));
    }
}

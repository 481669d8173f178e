//! What went wrong talking to S3, in words a user can act on.
//!
//! Messages name the bucket, key and endpoint and say what to check. They are built from the
//! response (status, error code, message, request id) and the connection error chain, which
//! never contain credentials; an endpoint's `user:password@` part is masked.

use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;

/// Where a store points, for messages.
#[derive(Debug)]
pub(super) struct Target {
    /// The bucket name.
    pub bucket: String,
    /// The key prefix of the layout, without surrounding slashes (may be empty).
    pub prefix: String,
    /// A custom endpoint, credentials masked; `None` for AWS itself.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: String,
}

/// The failures callers and messages tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// The key does not exist (404 NoSuchKey, or a bodiless 404 on HEAD).
    NotFound,
    /// The bucket does not exist.
    NoSuchBucket,
    /// The credentials were refused or may not do this.
    AccessDenied,
    /// The bucket lives in another region; its region when the response said so.
    WrongRegion(Option<String>),
    /// A conditional write lost (412 PreconditionFailed, 409 ConditionalRequestConflict).
    PreconditionFailed,
    /// No HTTP answer: connection refused, DNS failure, TLS failure, timeout.
    Unreachable,
    /// Anything else.
    Other,
}

/// Classifies an SDK error.
pub(super) fn kind<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Kind {
    match err {
        SdkError::TimeoutError(_) => return Kind::Unreachable,
        SdkError::DispatchFailure(failure) => {
            return match failure.as_connector_error() {
                Some(c) if c.is_io() || c.is_timeout() => Kind::Unreachable,
                _ => Kind::Other,
            };
        }
        _ => {}
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().unwrap_or_default();
    match (code, status) {
        ("NoSuchBucket", _) => Kind::NoSuchBucket,
        ("NoSuchKey" | "NotFound", _) | ("", Some(404)) => Kind::NotFound,
        ("PreconditionFailed" | "ConditionalRequestConflict", _) | (_, Some(412)) => Kind::PreconditionFailed,
        (
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "AllAccessDisabled",
            _,
        )
        | ("", Some(403)) => Kind::AccessDenied,
        ("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException", _)
        | (_, Some(301)) => Kind::WrongRegion(bucket_region(err)),
        // A HEAD signed for the wrong region gets a bodiless 400 naming the right one.
        ("", Some(400)) if bucket_region(err).is_some() => Kind::WrongRegion(bucket_region(err)),
        _ => Kind::Other,
    }
}

/// The bucket's real region, from the `x-amz-bucket-region` header or an
/// AuthorizationHeaderMalformed message ("... is wrong; expecting 'eu-west-1'").
fn bucket_region<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    if let Some(region) = err.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")) {
        return Some(region.to_owned());
    }
    let message = err.message()?;
    let (_, after) = message.split_once("expecting '")?;
    let (region, _) = after.split_once('\'')?;
    Some(region.to_owned())
}

impl Target {
    /// `s3://BUCKET/KEY` for a full bucket key.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The store's URL, with the endpoint when it is not AWS.
    pub fn location(&self) -> String {
        let url = if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        };
        match &self.endpoint {
            Some(endpoint) => format!("{url} (endpoint {endpoint})"),
            None => url,
        }
    }

    /// Where requests go, for messages.
    fn server(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("endpoint {endpoint}"),
            None => format!("AWS S3 in region {}", self.region),
        }
    }

    /// Turns an SDK error met while `doing` (`"reading"`, `"writing"`, ...) `key` into a
    /// message naming the bucket and endpoint and saying what to check; the response or
    /// connection error is its cause.
    pub fn describe<E>(&self, err: SdkError<E, HttpResponse>, doing: &str, key: &str) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let what = format!("{doing} {}", self.url(key));
        let bucket = &self.bucket;
        let server = self.server();
        let message = match kind(&err) {
            Kind::NoSuchBucket => format!(
                "{what}: bucket `{bucket}` does not exist at {server}; check the bucket name in \
                 the mirror URL and the endpoint (--s3-endpoint or AWS_ENDPOINT_URL)"
            ),
            Kind::AccessDenied => format!(
                "{what}: access to bucket `{bucket}` at {server} was denied; check the \
                 credentials the AWS chain picks up (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 AWS_PROFILE, web identity) and that they may read, write and list the bucket"
            ),
            Kind::WrongRegion(Some(actual)) => format!(
                "{what}: bucket `{bucket}` is in region {actual}, not {}; set AWS_REGION={actual}",
                self.region
            ),
            Kind::WrongRegion(None) => format!(
                "{what}: bucket `{bucket}` is not in region {}; set AWS_REGION to the bucket's region",
                self.region
            ),
            Kind::Unreachable => format!(
                "{what}: cannot reach {server}; check the endpoint (--s3-endpoint or \
                 AWS_ENDPOINT_URL), the network and any proxy"
            ),
            Kind::NotFound => format!("{what}: not found in bucket `{bucket}` at {server}"),
            Kind::PreconditionFailed => {
                format!("{what}: another writer changed it first (bucket `{bucket}` at {server})")
            }
            Kind::Other => format!("{what} (bucket `{bucket}` at {server})"),
        };
        let cause = match Response::of(&err) {
            Some(response) => anyhow::Error::new(response),
            None => anyhow::Error::new(err),
        };
        cause.context(message)
    }
}

/// What an S3 error response said, as a cause in an error chain.
#[derive(Debug)]
struct Response {
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

impl Response {
    /// The response's details, when the error is an S3 error response (with a code) rather
    /// than a connection failure or an answer the SDK could not read.
    fn of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<Response> {
        if !matches!(err, SdkError::ServiceError(_)) || err.code().is_none() {
            return None;
        }
        Some(Response {
            status: err.raw_response().map(|r| r.status().as_u16()),
            code: err.code().map(str::to_owned),
            message: err.message().map(str::to_owned),
            request_id: err.request_id().map(str::to_owned),
        })
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("S3 answered")?;
        if let Some(status) = self.status {
            write!(f, " HTTP {status}")?;
        }
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Response {}

/// `endpoint` with any `user:password@` part masked, for messages.
pub(super) fn redact_endpoint(endpoint: &str) -> String {
    crate::net::redact::url(endpoint).into_owned()
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    /// An error response as the SDK hands it over.
    fn answer(
        status: u16,
        code: Option<&str>,
        message: &str,
        region_header: Option<&str>,
    ) -> SdkError<GetObjectError, HttpResponse> {
        let mut raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        if let Some(region) = region_header {
            raw.headers_mut().insert("x-amz-bucket-region", region.to_owned());
        }
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(GetObjectError::generic(meta.build()), raw)
    }

    fn aws_target() -> Target {
        Target {
            bucket: "b".into(),
            prefix: "p".into(),
            endpoint: None,
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(kind(&answer(404, None, "", None)), Kind::NotFound);
        assert_eq!(kind(&answer(404, Some("NoSuchKey"), "", None)), Kind::NotFound);
        assert_eq!(kind(&answer(404, Some("NoSuchBucket"), "", None)), Kind::NoSuchBucket);
        assert_eq!(
            kind(&answer(412, Some("PreconditionFailed"), "", None)),
            Kind::PreconditionFailed
        );
        assert_eq!(
            kind(&answer(409, Some("ConditionalRequestConflict"), "", None)),
            Kind::PreconditionFailed
        );
        assert_eq!(kind(&answer(403, None, "", None)), Kind::AccessDenied);
        assert_eq!(
            kind(&answer(403, Some("SignatureDoesNotMatch"), "", None)),
            Kind::AccessDenied
        );
        assert_eq!(kind(&answer(500, Some("InternalError"), "", None)), Kind::Other);
    }

    #[test]
    fn a_wrong_region_names_the_right_one() {
        let head = answer(301, None, "", Some("eu-west-1"));
        assert_eq!(kind(&head), Kind::WrongRegion(Some("eu-west-1".into())));
        let text = format!("{:#}", aws_target().describe(head, "reading", "p/index.json"));
        assert!(
            text.contains("bucket `b` is in region eu-west-1, not us-east-1"),
            "{text}"
        );
        assert!(text.contains("set AWS_REGION=eu-west-1"), "{text}");

        let bad_head = answer(400, None, "", Some("ap-south-1"));
        assert_eq!(kind(&bad_head), Kind::WrongRegion(Some("ap-south-1".into())));

        let malformed = answer(
            400,
            Some("AuthorizationHeaderMalformed"),
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-central-1'",
            None,
        );
        assert_eq!(kind(&malformed), Kind::WrongRegion(Some("eu-central-1".into())));
        let redirect = answer(301, Some("PermanentRedirect"), "use the right endpoint", None);
        let text = format!("{:#}", aws_target().describe(redirect, "writing", "p/index.json"));
        assert!(text.contains("is not in region us-east-1; set AWS_REGION"), "{text}");
    }

    #[test]
    fn denied_access_says_what_to_check() {
        let denied = answer(403, Some("AccessDenied"), "Access Denied", None);
        let text = format!("{:#}", aws_target().describe(denied, "reading", "p/index.json"));
        assert!(
            text.starts_with("reading s3://b/p/index.json: access to bucket `b`"),
            "{text}"
        );
        assert!(text.contains("AWS_PROFILE"), "{text}");
        assert!(
            text.ends_with("S3 answered HTTP 403 AccessDenied: Access Denied"),
            "{text}"
        );
    }

    #[test]
    fn endpoint_credentials_are_masked() {
        assert_eq!(redact_endpoint("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(
            redact_endpoint("https://key:secret@minio.example/x@y"),
            "https://***@minio.example/x@y"
        );
    }
}

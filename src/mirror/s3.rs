//! An [`ObjectStore`] in an S3 bucket (AWS or any S3-compatible store: MinIO, R2, Ceph, moto).
//!
//! `s3://BUCKET/PREFIX` holds the same OCI image layout as a `file://` mirror, under `PREFIX/`
//! (`PREFIX/oci-layout`, `PREFIX/index.json`, `PREFIX/blobs/sha256/<hex>`).
//!
//! Credentials, region and endpoint come from the standard AWS chain (`AWS_*` variables,
//! `~/.aws` profiles, web identity in CI, container and instance metadata); `AWS_ENDPOINT_URL`
//! or [`S3Options::endpoint`] points it at an S3-compatible store, addressed path-style.
//! Checksums are computed and validated only when an operation requires them, which
//! S3-compatible stores accept.
//!
//! The store is synchronous: it blocks on the shared runtime ([`crate::net::runtime`]). Any
//! number of std threads may call one store at once; calling it from inside an async
//! runtime is refused with an error (it would otherwise panic).
//!
//! Retries are the SDK's own (standard mode: it classifies throttling and transient errors,
//! jitters, honours `x-amz-retry-after` and keeps a retry quota), with the attempts and
//! delays of [`S3Options::retry`], so one [`Retry`] policy states the numbers everywhere.

mod error;
mod multipart;
mod reader;

use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::{ByteStream, Length};

use self::error::{Kind, Target};
use super::source::{BlobSource, local_file};
use super::store::{Listed, ObjectStore, Precondition, Version};
use crate::net::{self, Retry};

/// The smallest part S3 accepts in a multipart upload (all parts but the last).
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest part S3 accepts in a multipart upload.
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// The most parts one multipart upload may have; larger files get larger parts.
const MAX_PARTS: u64 = 10_000;
/// Read buffer for streaming a file into a request body.
const FILE_BUFFER: usize = 256 * 1024;

/// How to reach and use an S3 bucket. Every field has a default ([`S3Options::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// S3-compatible endpoint URL (`--s3-endpoint`); default: `AWS_ENDPOINT_URL` or the
    /// profile's `endpoint_url`, else AWS itself.
    pub endpoint: Option<String>,
    /// Region; default: the AWS chain (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`); default (`None`): on whenever an
    /// endpoint is configured, off for AWS (virtual-hosted style).
    pub path_style: Option<bool>,
    /// Files larger than this go up as multipart uploads in parts of this size
    /// (5 MiB to 5 GiB; default 16 MiB; grown when a file would need more than 10,000 parts).
    pub part_size: u64,
    /// Parts uploaded in parallel per file (default 4); each part streams from the file.
    pub jobs: usize,
    /// Attempts and backoff of the SDK's retries (default [`Retry::HTTP`]: 6 attempts,
    /// 200 ms doubling to at most 60 s; the SDK applies its own jitter).
    pub retry: Retry,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            path_style: None,
            part_size: 16 * 1024 * 1024,
            jobs: 4,
            retry: Retry::HTTP,
        }
    }
}

impl S3Options {
    /// Checks the values a user can get wrong before anything talks to S3.
    fn validate(&self) -> Result<()> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            bail!(
                "S3 part size {} is out of range: S3 accepts parts of 5 MiB ({MIN_PART_SIZE} bytes) to 5 GiB",
                self.part_size
            );
        }
        if self.jobs == 0 {
            bail!("S3 parallel parts must be at least 1");
        }
        self.retry.validate().context("S3 retries")?;
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            bail!(
                "S3 endpoint `{}` must start with http:// or https://",
                error::redact_endpoint(endpoint)
            );
        }
        if let Some(endpoint) = &self.endpoint {
            refuse_credentials(endpoint)?;
        }
        Ok(())
    }
}

/// An S3 bucket (and key prefix) holding an OCI image layout; see the module docs.
pub struct S3Store {
    client: Client,
    target: Arc<Target>,
    part_size: u64,
    jobs: usize,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("location", &self.location())
            .field("region", &self.target.region)
            .field("part_size", &self.part_size)
            .field("jobs", &self.jobs)
            .finish()
    }
}

impl S3Store {
    /// Connects to `url` (`s3://BUCKET` or `s3://BUCKET/PREFIX`) with credentials and region
    /// from the AWS chain. Nothing is sent to S3 yet; the first operation reports a missing
    /// bucket, denied access, a wrong region or an unreachable endpoint.
    pub fn new(url: &str, opts: &S3Options) -> Result<S3Store> {
        let (bucket, prefix) = parse_url(url)?;
        opts.validate()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &opts.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let shared = net::runtime::block_on(loader.load())?;
        let endpoint = shared.endpoint_url().map(str::to_owned);
        if let Some(endpoint) = &endpoint {
            refuse_credentials(endpoint)?;
        }
        let region = shared
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .region(Region::new(region.clone()))
            .force_path_style(opts.path_style.unwrap_or(endpoint.is_some()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(opts.retry.attempts)
                    .with_initial_backoff(opts.retry.base_delay)
                    .with_max_backoff(opts.retry.max_delay),
            )
            .build();
        Ok(S3Store {
            client: Client::from_conf(config),
            target: Arc::new(Target {
                bucket,
                prefix,
                endpoint: endpoint.as_deref().map(error::redact_endpoint),
                region,
            }),
            part_size: opts.part_size,
            jobs: opts.jobs,
        })
    }

    /// The bucket's key for a layout key.
    fn full_key(&self, key: &str) -> String {
        if self.target.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.target.prefix)
        }
    }

    /// Runs `fut` on the shared runtime from the calling (non-async) thread.
    fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        Ok(net::runtime::block_on(fut)?)
    }

    /// Stores a file in one PutObject, streamed from disk.
    async fn put_single(&self, key: &str, file: &Path, size: u64) -> Result<()> {
        let body = ByteStream::read_from()
            .path(file)
            .buffer_size(FILE_BUFFER)
            .length(Length::Exact(size))
            .build()
            .await
            .with_context(|| format!("reading {}", file.display()))?;
        self.client
            .put_object()
            .bucket(&self.target.bucket)
            .key(key)
            .content_length(size_i64(size)?)
            .body(body)
            .send()
            .await
            .map_err(|e| self.target.describe(e, "uploading", key))?;
        Ok(())
    }
}

/// Refuses an endpoint URL with `user:password@` in it (the SDK would not use them, and
/// they would end up wherever the endpoint is shown).
fn refuse_credentials(endpoint: &str) -> Result<()> {
    if crate::net::redact::userinfo(endpoint).is_some() {
        bail!(
            "the S3 endpoint `{}` carries credentials: {}",
            error::redact_endpoint(endpoint),
            crate::net::redact::S3_HINT
        );
    }
    Ok(())
}

/// Splits `s3://BUCKET/PREFIX` into the bucket and the prefix without surrounding slashes.
pub(crate) fn parse_url(url: &str) -> Result<(String, String)> {
    let shown = crate::net::redact::url(url);
    if crate::net::redact::userinfo(url).is_some() {
        bail!(
            "the S3 URL `{shown}` carries credentials: {}",
            crate::net::redact::S3_HINT
        );
    }
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("`{shown}` is not an S3 URL (expected s3://BUCKET/PREFIX)"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("`{shown}` names no bucket (expected s3://BUCKET/PREFIX)");
    }
    if let Some(bad) = bucket
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        bail!(
            "bucket name `{bucket}` in `{shown}` contains `{bad}`; bucket names use letters, digits, `.`, `-` and `_`"
        );
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() && prefix.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        bail!("key prefix `{prefix}` in `{shown}` has an empty, `.` or `..` path segment");
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// S3 APIs take sizes as `i64`.
fn size_i64(size: u64) -> Result<i64> {
    i64::try_from(size).with_context(|| format!("size {size} is too large for S3"))
}

impl ObjectStore for S3Store {
    fn location(&self) -> String {
        self.target.location()
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let key = self.full_key(key);
        let head = self.client.head_object().bucket(&self.target.bucket).key(&key);
        match self.block_on(head.send())? {
            Ok(_) => Ok(true),
            Err(e) if error::kind(&e) == Kind::NotFound => Ok(false),
            Err(e) => Err(self.target.describe(e, "checking", &key)),
        }
    }

    fn open(&self, key: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let key = self.full_key(key);
        let get = self.client.get_object().bucket(&self.target.bucket).key(&key);
        match self.block_on(get.send())? {
            Ok(out) => Ok(Some(Box::new(reader::BodyReader::spawn(
                out.body,
                self.target.url(&key),
            )?))),
            Err(e) if error::kind(&e) == Kind::NotFound => Ok(None),
            Err(e) => Err(self.target.describe(e, "reading", &key)),
        }
    }

    fn put(&self, key: &str, source: &dyn BlobSource) -> Result<()> {
        // Parts are read by range, in parallel: a source without a file is copied to one first.
        let local = local_file(source, None)?;
        let file = local.path();
        let key = self.full_key(key);
        let size = std::fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        let stored = if size <= self.part_size {
            self.block_on(self.put_single(&key, file, size))?
        } else {
            let part_size = self.part_size.max(size.div_ceil(MAX_PARTS));
            let upload = multipart::Upload {
                client: &self.client,
                target: &self.target,
                key: &key,
                file,
                size,
                part_size,
                jobs: self.jobs,
            };
            self.block_on(upload.run())?
        };
        stored
            .map_err(|e| match std::fs::metadata(file) {
                Ok(now) if now.len() != size => e.context(format!(
                    "{} changed size during the upload ({size} bytes, then {})",
                    file.display(),
                    now.len()
                )),
                _ => e,
            })
            .with_context(|| format!("storing {} as {}", file.display(), self.target.url(&key)))
    }

    fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let key = self.full_key(key);
        let put = self
            .client
            .put_object()
            .bucket(&self.target.bucket)
            .key(&key)
            .body(ByteStream::from(bytes.to_vec()));
        self.block_on(put.send())?
            .map_err(|e| self.target.describe(e, "writing", &key))?;
        Ok(())
    }

    fn read_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let key = self.full_key(key);
        let get = self.client.get_object().bucket(&self.target.bucket).key(&key);
        let read = async {
            let out = match get.send().await {
                Ok(out) => out,
                Err(e) if error::kind(&e) == Kind::NotFound => return Ok(None),
                Err(e) => return Err(self.target.describe(e, "reading", &key)),
            };
            let etag = out
                .e_tag()
                .with_context(|| format!("{} has no ETag", self.target.url(&key)))?
                .to_owned();
            let bytes = out
                .body
                .collect()
                .await
                .with_context(|| format!("reading {}", self.target.url(&key)))?;
            Ok(Some((bytes.to_vec(), Version(etag))))
        };
        self.block_on(read)?
    }

    fn write_if(&self, key: &str, bytes: &[u8], pre: &Precondition) -> Result<bool> {
        let key = self.full_key(key);
        let put = self
            .client
            .put_object()
            .bucket(&self.target.bucket)
            .key(&key)
            .body(ByteStream::from(bytes.to_vec()));
        let put = match pre {
            Precondition::Absent => put.if_none_match("*"),
            Precondition::Matches(Version(etag)) => put.if_match(etag),
        };
        match self.block_on(put.send())? {
            Ok(_) => Ok(true),
            Err(e) => match error::kind(&e) {
                Kind::PreconditionFailed => Ok(false),
                // S3 (and moto) answer If-Match on a missing key with 404 NoSuchKey.
                Kind::NotFound if matches!(pre, Precondition::Matches(_)) => Ok(false),
                _ => Err(self.target.describe(e, "writing", &key)),
            },
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let key = self.full_key(key);
        let delete = self.client.delete_object().bucket(&self.target.bucket).key(&key);
        match self.block_on(delete.send())? {
            Ok(_) => Ok(()),
            Err(e) if error::kind(&e) == Kind::NotFound => Ok(()),
            Err(e) => Err(self.target.describe(e, "deleting", &key)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let full = self.full_key(prefix);
        let strip = if self.target.prefix.is_empty() {
            0
        } else {
            self.target.prefix.len() + 1
        };
        let list = async {
            let mut keys = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.target.bucket)
                    .prefix(&full)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|e| self.target.describe(e, "listing", &full))?;
                keys.extend(page.contents().iter().filter_map(|o| {
                    Some(Listed {
                        key: o.key()?[strip..].to_owned(),
                        modified: o.last_modified().and_then(|t| SystemTime::try_from(*t).ok()),
                        size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    })
                }));
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                    _ => return Ok(keys),
                }
            }
        };
        self.block_on(list)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_splits_bucket_and_prefix() {
        assert_eq!(parse_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_url("s3://b/").unwrap(), ("b".into(), "".into()));
        assert_eq!(
            parse_url("s3://my-bucket/a/b/").unwrap(),
            ("my-bucket".into(), "a/b".into())
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "file:///x",
            "s3://",
            "s3:///p",
            "s3://b c/p",
            "s3://b/a//c",
            "s3://b/a/../c",
        ] {
            assert!(parse_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn options_are_validated() {
        let ok = S3Options::default();
        assert!(ok.validate().is_ok());
        let small = S3Options {
            part_size: 1024,
            ..ok.clone()
        };
        assert!(small.validate().unwrap_err().to_string().contains("5 MiB"));
        let none = S3Options { jobs: 0, ..ok.clone() };
        assert!(none.validate().is_err());
        let scheme = S3Options {
            endpoint: Some("localhost:9000".into()),
            ..ok
        };
        assert!(scheme.validate().unwrap_err().to_string().contains("http://"));
    }
}

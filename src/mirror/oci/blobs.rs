//! Blobs: existence (HEAD), uploads and downloads, one named function per protocol step.
//!
//! An upload is: [`Client::blob_size`] (skip when present; [`Client::upload_blob`] leaves
//! that to its caller) → [`Client::start_upload`] or
//! [`Client::mount_blob`] (POST; a mount may finish right there) → [`Client::put_upload`]
//! (one PUT streaming the file). When the registry refuses a single PUT (405, 411, 413,
//! 501) or [`ClientOptions::chunk_size`] asks for it, the file goes in chunks instead:
//! [`Client::patch_upload`] (PATCH per chunk, resuming from [`Client::upload_status`] after
//! a 416) then [`Client::commit_upload`] (PUT without body). docker-registry 2.8 ignores a
//! single-request `POST ?digest=` upload, so it is never used.
//!
//! [`ClientOptions::chunk_size`]: super::ClientOptions::chunk_size

use std::io::Read;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode, Url};

use super::auth::Scope;
use super::client::{Body, Client, Request};
use super::error::RegistryError;
use super::transport::display_url;
use crate::digest::Digest;
use crate::mirror::BlobSource;

/// Chunk size used when a registry refuses a single-PUT upload.
const FALLBACK_CHUNK: u64 = 8 * 1024 * 1024;
/// How many times an upload starts over when the registry forgot its session.
const SESSION_RESTARTS: u32 = 2;

/// Largest blob without a local file that an upload holds in memory (configs, manifests);
/// bigger ones must come from a file ([`crate::mirror::source::local_file`]).
pub const IN_MEMORY_MAX: u64 = 4 << 20;

/// `len` bytes of `source` from `offset`, as a request body that can be sent again: the
/// source's file read in place, or its bytes when it is small.
fn body_of(source: &dyn BlobSource, offset: u64, len: u64) -> Result<Body> {
    if let Some(path) = source.path() {
        Client::check_file(path, source.size())?;
        return Ok(Body::File {
            path: path.to_path_buf(),
            offset,
            len,
        });
    }
    if source.size() > IN_MEMORY_MAX {
        bail!(
            "a blob of {} bytes without a local file cannot be uploaded from memory",
            source.size()
        );
    }
    let mut bytes = Vec::with_capacity(source.size() as usize);
    source.open()?.read_to_end(&mut bytes)?;
    if bytes.len() as u64 != source.size() {
        bail!("a blob source gave {} bytes, expected {}", bytes.len(), source.size());
    }
    let end = usize::try_from(offset + len)?;
    Ok(Body::Bytes(Bytes::from(bytes).slice(usize::try_from(offset)?..end)))
}

/// How a source is named in messages: its file, when it has one.
pub(crate) fn describe(source: &dyn BlobSource) -> String {
    source
        .path()
        .map_or_else(|| format!("{} bytes", source.size()), |p| p.display().to_string())
}

/// What pushing one blob did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository already had it (HEAD said so); nothing was sent.
    Existed,
    /// Mounted from another repository of the same registry; nothing was sent.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// The answer to starting an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// A cross-repository mount succeeded (201): the blob is in place.
    Mounted,
    /// An upload session to send the content to (202 `Location`).
    Session(Url),
}

impl Client {
    /// HEAD `/v2/<repo>/blobs/<digest>`: the blob's size when the repository has it.
    pub async fn blob_size(&self, repository: &str, digest: &Digest) -> Result<Option<u64>> {
        let req = Request::new(
            Method::HEAD,
            self.url(repository, &format!("blobs/{digest}")),
            Scope::pull(repository),
        );
        let Some(resp) = self.send_found(&req, repository).await? else {
            return Ok(None);
        };
        // Read the header itself: for a HEAD answer the body length (what reqwest's
        // content_length reports) is zero.
        let size = resp
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Some(size.unwrap_or(0)))
    }

    /// DELETE `/v2/<repo>/blobs/<digest>`: `Ok(false)` when the repository does not have it;
    /// an error naming the setting when the registry refuses deletes.
    pub async fn delete_blob(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let req = Request::new(
            Method::DELETE,
            self.url(repository, &format!("blobs/{digest}")),
            Scope::delete(repository),
        );
        let resp = self.send(&req).await?;
        super::manifests::deleted(self, resp, &req, repository).await
    }

    /// POST `/v2/<repo>/blobs/uploads/`: opens an upload session.
    pub async fn start_upload(&self, repository: &str) -> Result<Url> {
        let req = Request::new(
            Method::POST,
            self.url(repository, "blobs/uploads/"),
            Scope::push(repository),
        );
        let resp = self.send(&req).await?;
        let resp = self.expect(resp, &req, &[StatusCode::ACCEPTED], repository).await?;
        session_location(&req.url, &resp)
    }

    /// POST `/v2/<repo>/blobs/uploads/?mount=<digest>&from=<other>`: mounts a blob another
    /// repository of the same registry holds. Registries that cannot mount open an upload
    /// session instead, which is returned.
    pub async fn mount_blob(&self, repository: &str, digest: &Digest, from: &str) -> Result<UploadStart> {
        let mut url = self.url(repository, "blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let req = Request::new(Method::POST, url, Scope::push(repository).and_pull(from));
        let resp = self.send(&req).await?;
        let resp = self
            .expect(resp, &req, &[StatusCode::CREATED, StatusCode::ACCEPTED], repository)
            .await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(UploadStart::Mounted);
        }
        Ok(UploadStart::Session(session_location(&req.url, &resp)?))
    }

    /// PUT `<session>?digest=<digest>` with the whole blob as one streamed body: completes
    /// the upload in one request. The registry checks the digest.
    pub async fn put_upload(
        &self,
        repository: &str,
        session: &Url,
        digest: &Digest,
        source: &dyn BlobSource,
    ) -> Result<()> {
        let req = Request::new(Method::PUT, with_digest(session, digest), Scope::push(repository))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))
            .body(body_of(source, 0, source.size())?);
        let resp = self.send(&req).await?;
        let resp = self.expect(resp, &req, &[StatusCode::CREATED], repository).await?;
        check_digest_header(&resp, digest)
    }

    /// PATCH the file to `session` in chunks of `chunk` bytes (`Content-Range: start-end`);
    /// returns the session URL to commit. After a 416 (the registry has a different
    /// amount than sent) it asks [`Client::upload_status`] and resumes from there.
    pub async fn patch_upload(
        &self,
        repository: &str,
        session: &Url,
        source: &dyn BlobSource,
        chunk: u64,
    ) -> Result<Url> {
        let chunk = chunk.max(1);
        let size = source.size();
        let mut location = session.clone();
        let mut offset = 0u64;
        let mut resumes = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let req = Request::new(Method::PATCH, location.clone(), Scope::push(repository))
                .header(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))
                .header(reqwest::header::CONTENT_RANGE, HeaderValue::from_str(&range)?)
                .body(body_of(source, offset, len)?);
            let resp = self.send(&req).await?;
            if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && resumes < 3 {
                resumes += 1;
                (location, offset) = self.upload_status(repository, &location).await?;
                continue;
            }
            let resp = self
                .expect(resp, &req, &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT], repository)
                .await?;
            let end = range_end(&resp)
                .with_context(|| format!("PATCH {} answered without a valid Range header", display_url(&location)))?;
            if end != offset + len {
                bail!(
                    "PATCH {} stored bytes up to {end}, expected {}",
                    display_url(&location),
                    offset + len
                );
            }
            location = session_location(&location, &resp)?;
            offset = end;
        }
        Ok(location)
    }

    /// GET `<session>`: how many bytes the registry holds for an upload, and the session
    /// URL to continue with.
    pub async fn upload_status(&self, repository: &str, session: &Url) -> Result<(Url, u64)> {
        let req = Request::new(Method::GET, session.clone(), Scope::push(repository));
        let resp = self.send(&req).await?;
        let resp = self
            .expect(resp, &req, &[StatusCode::NO_CONTENT, StatusCode::OK], repository)
            .await?;
        let offset = range_end(&resp).unwrap_or(0);
        Ok((session_location(session, &resp)?, offset))
    }

    /// PUT `<session>?digest=<digest>` without a body: completes a chunked upload.
    pub async fn commit_upload(&self, repository: &str, session: &Url, digest: &Digest) -> Result<()> {
        let req = Request::new(Method::PUT, with_digest(session, digest), Scope::push(repository))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let resp = self.send(&req).await?;
        let resp = self.expect(resp, &req, &[StatusCode::CREATED], repository).await?;
        check_digest_header(&resp, digest)
    }

    /// Pushes one blob unless the repository has it: HEAD, then a mount from `mount_from`
    /// (another repository of this registry) when given, else an upload. Starts over when
    /// the registry lost the upload session (`BLOB_UPLOAD_UNKNOWN`).
    pub async fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
    ) -> Result<BlobPush> {
        self.push_blob_restarting(repository, digest, source, mount_from, true)
            .await
    }

    /// Uploads one blob the caller knows the repository lacks: [`Client::push_blob`]
    /// without the HEAD (callers of [`crate::mirror::Mirror::put_blob`] asked already).
    pub async fn upload_blob(&self, repository: &str, digest: &Digest, source: &dyn BlobSource) -> Result<()> {
        self.push_blob_restarting(repository, digest, source, None, false)
            .await
            .map(drop)
    }

    async fn push_blob_restarting(
        &self,
        repository: &str,
        digest: &Digest,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
        head_first: bool,
    ) -> Result<BlobPush> {
        let mut restarts = 0;
        loop {
            match self
                .push_blob_once(repository, digest, source, mount_from, head_first)
                .await
            {
                Err(e) if restarts < SESSION_RESTARTS && lost_session(&e) => restarts += 1,
                result => return result,
            }
        }
    }

    async fn push_blob_once(
        &self,
        repository: &str,
        digest: &Digest,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
        head_first: bool,
    ) -> Result<BlobPush> {
        if let Some(path) = source.path() {
            Client::check_file(path, source.size())?;
        }
        if head_first && self.blob_size(repository, digest).await?.is_some() {
            return Ok(BlobPush::Existed);
        }
        let session = match mount_from.filter(|from| *from != repository) {
            Some(from) => match self.mount_blob(repository, digest, from).await? {
                UploadStart::Mounted => return Ok(BlobPush::Mounted),
                UploadStart::Session(url) => url,
            },
            None => self.start_upload(repository).await?,
        };
        if let Some(chunk) = self.opts.chunk_size {
            let session = self.patch_upload(repository, &session, source, chunk).await?;
            self.commit_upload(repository, &session, digest).await?;
            return Ok(BlobPush::Uploaded);
        }
        match self.put_upload(repository, &session, digest, source).await {
            Err(e) if refused_single_put(&e) => {
                let session = self.start_upload(repository).await?;
                let session = self.patch_upload(repository, &session, source, FALLBACK_CHUNK).await?;
                self.commit_upload(repository, &session, digest).await?;
                Ok(BlobPush::Uploaded)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(BlobPush::Uploaded),
        }
    }

    /// Pushes many blobs, `jobs` at a time (at least one); results in input order. Memory
    /// stays bounded: each upload streams its file in small reads. Stops at the first
    /// failure, which names the blob and its file.
    pub async fn push_blobs<S: BlobSource>(
        &self,
        repository: &str,
        blobs: &[(Digest, S)],
        jobs: usize,
    ) -> Result<Vec<BlobPush>> {
        let mut results = futures_util::stream::iter(blobs)
            .map(|(digest, source)| async move {
                self.push_blob(repository, digest, source, None).await.with_context(|| {
                    format!(
                        "pushing blob {digest} ({}) to {}/{repository}",
                        describe(source),
                        self.registry.host
                    )
                })
            })
            .buffered(jobs.max(1));
        let mut out = Vec::with_capacity(blobs.len());
        while let Some(result) = results.next().await {
            out.push(result?);
        }
        Ok(out)
    }

    /// GET `/v2/<repo>/blobs/<digest>` from byte `offset` on (a `Range` request when not 0),
    /// following redirects to storage. The caller streams and verifies the body; a `200`
    /// answer to a ranged request means the registry sent the whole blob.
    pub async fn get_blob(&self, repository: &str, digest: &Digest, offset: u64) -> Result<Response> {
        let mut req = Request::new(
            Method::GET,
            self.url(repository, &format!("blobs/{digest}")),
            Scope::pull(repository),
        );
        if offset > 0 {
            req = req.header(RANGE, HeaderValue::from_str(&format!("bytes={offset}-"))?);
        }
        let resp = self.send(&req).await?;
        self.expect(resp, &req, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT], repository)
            .await
    }
}

/// The session URL from a `Location` header, resolved against the request URL.
fn session_location(base: &Url, resp: &Response) -> Result<Url> {
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .with_context(|| {
            format!(
                "{} answered {} without a Location header",
                display_url(base),
                resp.status()
            )
        })?;
    base.join(location)
        .with_context(|| format!("{} answered a bad Location `{location}`", display_url(base)))
}

/// `session` with `digest=<digest>` added to its query.
fn with_digest(session: &Url, digest: &Digest) -> Url {
    let mut url = session.clone();
    url.query_pairs_mut().append_pair("digest", &digest.to_string());
    url
}

/// The end (exclusive) of the `Range: 0-N` (or `bytes=0-N`) an upload answer reports.
fn range_end(resp: &Response) -> Option<u64> {
    parse_range_end(resp.headers().get(RANGE)?.to_str().ok()?)
}

/// `0-N` or `bytes=0-N` → `N + 1`. docker-registry 2.8 also answers `0-0` for an empty
/// session, which reads as one byte; uploads only use this after sending data.
pub(crate) fn parse_range_end(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    let (_, end) = value.split_once('-')?;
    end.trim().parse::<u64>().ok().map(|e| e + 1)
}

/// Fails when the registry reports a different digest than the one pushed.
fn check_digest_header(resp: &Response, digest: &Digest) -> Result<()> {
    if let Some(got) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        && got != digest.to_string()
    {
        bail!(
            "{} stored the blob as {got}, expected {digest}",
            display_url(resp.url())
        );
    }
    Ok(())
}

fn registry_error(e: &anyhow::Error) -> Option<&RegistryError> {
    e.chain().find_map(|c| c.downcast_ref::<RegistryError>())
}

/// The registry forgot the upload session (it expired, or a retried request hit a
/// session the first attempt had already closed).
fn lost_session(e: &anyhow::Error) -> bool {
    registry_error(e).is_some_and(|r| r.code() == Some("BLOB_UPLOAD_UNKNOWN"))
}

/// The registry (or a proxy) will not take the blob in one PUT.
fn refused_single_put(e: &anyhow::Error) -> bool {
    registry_error(e)
        .and_then(RegistryError::status)
        .is_some_and(|s| matches!(s, 405 | 411 | 413 | 501))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(parse_range_end("0-1048575"), Some(1048576));
        assert_eq!(parse_range_end("bytes=0-99"), Some(100));
        assert_eq!(parse_range_end("junk"), None);
        assert_eq!(parse_range_end("0-"), None);
    }

    #[test]
    fn digest_goes_into_the_session_query() {
        let d = Digest::of(b"x");
        let url = with_digest(&Url::parse("http://h/v2/r/blobs/uploads/u?_state=abc").unwrap(), &d);
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("_state".to_string(), "abc".to_string()),
                ("digest".to_string(), d.to_string())
            ]
        );
    }

    #[test]
    fn error_classification() {
        let status = |status: u16, code: Option<&str>| {
            anyhow::Error::from(RegistryError::Status {
                method: "PUT".into(),
                url: "u".into(),
                status,
                code: code.map(str::to_string),
                message: None,
            })
            .context("outer")
        };
        assert!(lost_session(&status(404, Some("BLOB_UPLOAD_UNKNOWN"))));
        assert!(!lost_session(&status(404, Some("BLOB_UNKNOWN"))));
        assert!(refused_single_put(&status(413, None)));
        assert!(!refused_single_put(&status(400, Some("DIGEST_INVALID"))));
    }
}

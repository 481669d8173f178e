//! [`RegistryMirror`]: the [`Mirror`] core over a registry repository. The registry's tag
//! list is the index; the registry refuses a manifest whose blobs are missing, so a tag is
//! only ever written after all its blobs are present.
//!
//! The `Mirror` trait is synchronous; a `RegistryMirror` blocks on the shared runtime
//! ([`crate::net::runtime`]). Its methods must therefore not be called from inside an async
//! task (they fail with an error saying so); call them from plain threads.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{self, Read};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use reqwest::{Response, StatusCode};

use super::blobs::{BlobPush, IN_MEMORY_MAX, describe};
use super::client::{Client, ClientOptions};
use super::reference::{Reference, Target};
use crate::digest::Digest;
use crate::mirror::source::local_file;
use crate::mirror::{BlobSource, FileSource, Mirror};
use crate::net;

/// Chunks buffered between a download task and its reader.
const READ_AHEAD: usize = 8;

/// A mirror in one repository of an OCI registry (`oci://HOST/REPO`, `oci+http://...`).
pub struct RegistryMirror {
    client: Arc<Client>,
    reference: Reference,
}

impl RegistryMirror {
    /// Opens the mirror at `url` (`oci://HOST[:PORT]/REPO` or `oci+http://...`; no tag).
    /// Looks up credentials and reads CA files now; contacts the registry only when used.
    pub fn new(url: &str, opts: &ClientOptions) -> Result<RegistryMirror> {
        let reference = Reference::parse(url)?;
        if reference.target != Target::Repository {
            anyhow::bail!(
                "mirror URL `{url}` names a tag or digest; a mirror is a whole repository: {}",
                reference.repository_url()
            );
        }
        RegistryMirror::for_repository(reference, opts)
    }

    /// Opens the mirror in the repository `reference` names (its tag or digest, if any, is
    /// dropped). Looks up credentials and reads CA files now.
    pub fn for_repository(mut reference: Reference, opts: &ClientOptions) -> Result<RegistryMirror> {
        reference.target = Target::Repository;
        let client = Client::new(reference.registry.clone(), &reference.repository, opts)
            .with_context(|| format!("cannot set up the registry client for {}", reference.repository_url()))?;
        Ok(RegistryMirror {
            client: Arc::new(client),
            reference,
        })
    }

    /// The parsed mirror URL.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The repository name inside the registry.
    pub fn repository(&self) -> &str {
        &self.reference.repository
    }

    /// The async client, for protocol steps the `Mirror` trait does not cover; run its
    /// futures with [`RegistryMirror::block_on`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs a client future on the shared runtime, blocking the calling thread; fails
    /// without running it when called from inside an async task.
    pub fn block_on<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        net::runtime::block_on(future)?
    }

    /// Makes blob `digest`, which repository `from` holds, available here without
    /// transferring it: a cross-repository mount. `Ok(false)` when `from` is on another
    /// registry, is this repository, or the registry declined.
    pub fn mount_from(&self, digest: &Digest, from: &RegistryMirror) -> Result<bool> {
        if from.reference.registry != self.reference.registry || from.repository() == self.repository() {
            return Ok(false);
        }
        let repo = from.repository();
        let start = self
            .block_on(self.client.mount_blob(self.repository(), digest, repo))
            .with_context(|| format!("mounting blob {digest} from {repo} into {}", self.location()))?;
        // A registry that cannot mount opened an upload session instead; it expires unused.
        Ok(matches!(start, super::blobs::UploadStart::Mounted))
    }

    /// The manifests the registry's referrers API lists for `digest` (`GET
    /// /v2/<repo>/referrers/<digest>`); `None` when the registry has no referrers API.
    pub fn referrers(&self, digest: &Digest) -> Result<Option<Vec<crate::spec::Descriptor>>> {
        self.block_on(self.client.referrers(self.repository(), digest))
            .with_context(|| format!("listing the referrers of {digest} in {}", self.location()))
    }

    /// Pushes blobs [`ClientOptions::jobs`] at a time, each skipped when present (see
    /// [`Client::push_blobs`]); results in input order. Sources are read in place or from
    /// memory (see [`Mirror::put_blob`] for other sources).
    pub fn push_blobs<S: BlobSource>(&self, blobs: &[(Digest, S)]) -> Result<Vec<BlobPush>> {
        self.block_on(self.client.push_blobs(self.repository(), blobs, self.client.opts.jobs))
    }

    /// Pushes one blob, mounting it from `mount_from` (another repository of the same
    /// registry) when given and possible. A large source without a local file is first
    /// copied to a temporary file, so retries and chunked uploads can read it again.
    pub fn push_blob(&self, digest: &Digest, source: &dyn BlobSource, mount_from: Option<&str>) -> Result<BlobPush> {
        self.with_readable(digest, source, |source| {
            self.block_on(self.client.push_blob(self.repository(), digest, source, mount_from))
        })
    }

    /// Runs `push` with `source`, or with a temporary copy of it when it is large and has no
    /// file (retries and chunks read it again), adding the blob to any error.
    fn with_readable<T>(
        &self,
        digest: &Digest,
        source: &dyn BlobSource,
        push: impl FnOnce(&dyn BlobSource) -> Result<T>,
    ) -> Result<T> {
        let what = || format!("pushing blob {digest} ({}) to {}", describe(source), self.location());
        if source.path().is_some() {
            return push(source).with_context(what);
        }
        // A source without a file is read here, on this plain thread, not inside the
        // upload's async task: it may itself be another network mirror (S3, a registry),
        // which blocks on the shared runtime.
        if source.size() > IN_MEMORY_MAX {
            let local = local_file(source, Some(digest)).with_context(what)?;
            return push(&FileSource::new(local.path(), source.size())).with_context(what);
        }
        let mut bytes = Vec::with_capacity(source.size() as usize);
        source
            .open()
            .and_then(|mut r| Ok(r.read_to_end(&mut bytes)?))
            .with_context(what)?;
        if bytes.len() as u64 != source.size() {
            return Err(anyhow::anyhow!(
                "a blob source gave {} bytes, expected {}",
                bytes.len(),
                source.size()
            ))
            .with_context(what);
        }
        push(&bytes).with_context(what)
    }
}

impl Mirror for RegistryMirror {
    fn location(&self) -> String {
        self.reference.repository_url()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let size = self
            .block_on(self.client.blob_size(self.repository(), digest))
            .with_context(|| format!("checking blob {digest} in {}", self.location()))?;
        Ok(size.is_some())
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let what = || format!("downloading blob {digest} from {}", self.location());
        let first = self
            .block_on(self.client.get_blob(self.repository(), digest, 0))
            .with_context(what)?;
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let download = Download {
            client: Arc::clone(&self.client),
            repository: self.repository().to_string(),
            digest: digest.clone(),
            what: what(),
            tx,
        };
        net::runtime::spawn(download.run(first))?;
        Ok(Box::new(BlobReader {
            rx,
            current: Bytes::new(),
            finished: false,
        }))
    }

    /// Uploads without asking first whether the repository has the blob: every caller of
    /// `put_blob` has asked ([`Mirror::has_blob`]), and a HEAD per blob is a round trip.
    fn put_blob(&self, digest: &Digest, source: &dyn BlobSource) -> Result<()> {
        self.with_readable(digest, source, |source| {
            self.block_on(self.client.upload_blob(self.repository(), digest, source))
        })
    }

    fn get_manifest(&self, reference: &str) -> Result<Option<Vec<u8>>> {
        let manifest = self
            .block_on(self.client.get_manifest(self.repository(), reference))
            .with_context(|| format!("reading manifest {reference} from {}", self.location()))?;
        Ok(manifest.map(|m| m.bytes))
    }

    fn put_manifest(&self, reference: &str, media_type: &str, manifest: &[u8]) -> Result<Digest> {
        self.block_on(
            self.client
                .put_manifest(self.repository(), reference, media_type, manifest),
        )
        .with_context(|| format!("pushing manifest {reference} to {}", self.location()))
    }

    fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        self.block_on(self.client.manifest_digest(self.repository(), reference))
            .with_context(|| format!("checking manifest {reference} in {}", self.location()))
    }

    fn delete_blob(&self, digest: &Digest) -> Result<()> {
        self.block_on(self.client.delete_blob(self.repository(), digest))
            .with_context(|| format!("deleting blob {digest} from {}", self.location()))?;
        Ok(())
    }

    /// Deletes the manifest by digest (registries delete by digest; every tag naming it goes
    /// too), after checking that a tag `reference` still names it.
    fn delete_manifest(&self, reference: &str, digest: &Digest) -> Result<bool> {
        let what = || format!("deleting manifest {reference} ({digest}) from {}", self.location());
        if !reference.contains(':') && self.manifest_digest(reference).with_context(what)?.as_ref() != Some(digest) {
            return Ok(false);
        }
        self.block_on(self.client.delete_manifest(self.repository(), digest))
            .with_context(what)
    }

    fn list_tags(&self) -> Result<BTreeSet<String>> {
        self.block_on(self.client.list_tags(self.repository()))
            .with_context(|| format!("listing the tags of {}", self.location()))
    }
}

/// A running blob download: feeds chunks to a [`BlobReader`], resuming with a `Range`
/// request when the connection drops mid-body.
struct Download {
    client: Arc<Client>,
    repository: String,
    digest: Digest,
    what: String,
    tx: tokio::sync::mpsc::Sender<io::Result<Option<Bytes>>>,
}

impl Download {
    async fn run(self, first: Response) {
        let mut response = first;
        let mut received = 0u64;
        let mut skip = 0u64;
        let mut resumes = self.client.opts.retry.start();
        loop {
            let item = match response.chunk().await {
                Ok(Some(mut chunk)) => {
                    let drop_now = skip.min(chunk.len() as u64) as usize;
                    skip -= drop_now as u64;
                    let chunk = chunk.split_off(drop_now);
                    received += chunk.len() as u64;
                    if chunk.is_empty() {
                        continue;
                    }
                    Ok(Some(chunk))
                }
                Ok(None) => Ok(None),
                Err(e) => match resumes.failed(None) {
                    Ok(pause) => {
                        tokio::time::sleep(pause).await;
                        match self.client.get_blob(&self.repository, &self.digest, received).await {
                            Ok(next) => {
                                // A registry that ignores Range sends everything again.
                                skip = if next.status() == StatusCode::PARTIAL_CONTENT {
                                    0
                                } else {
                                    received
                                };
                                response = next;
                                drop(e);
                                continue;
                            }
                            Err(again) => Err(io::Error::other(format!("{}: {again:#} (after: {e})", self.what))),
                        }
                    }
                    Err(_) => Err(io::Error::other(format!("{}: {e}", self.what))),
                },
            };
            let last = !matches!(item, Ok(Some(_)));
            if self.tx.send(item).await.is_err() || last {
                return;
            }
        }
    }
}

/// The synchronous end of a download (what [`Mirror::open_blob`] returns). Unverified:
/// callers check the digest, e.g. with [`crate::digest::VerifyingReader`].
struct BlobReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Option<Bytes>>>,
    current: Bytes,
    finished: bool,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Some(chunk))) => self.current = chunk,
                Some(Ok(None)) => self.finished = true,
                Some(Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                None => {
                    self.finished = true;
                    return Err(io::Error::other("blob download stopped before its end"));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

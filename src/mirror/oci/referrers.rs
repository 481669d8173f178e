//! The OCI 1.1 referrers protocol steps: pushing a manifest with a `subject` by digest
//! (and learning from `OCI-Subject` whether the registry indexed it), and
//! `GET /v2/<repo>/referrers/<digest>`. Registries without the API (docker-registry 2.8,
//! GHCR) answer the GET with 404; [`crate::mirror::referrers`] then falls back to the
//! referrers tag schema.

use anyhow::{Result, bail};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::{Body, Client, Request};
use super::transport::{display_url, read_limited};
use crate::digest::Digest;
use crate::spec::INDEX_MEDIA_TYPE;

/// Largest referrers list read (an image index; the spec suggests 4 MiB pages).
const MAX_INDEX: usize = 4 * 1024 * 1024;

impl Client {
    /// PUT `/v2/<repo>/manifests/<digest>`: stores an untagged manifest. Returns whether
    /// the registry answered `OCI-Subject`, i.e. indexed the manifest's `subject` for the
    /// referrers API (a registry without it stores the manifest and ignores `subject`).
    pub async fn put_manifest_by_digest(&self, repository: &str, media_type: &str, manifest: &[u8]) -> Result<bool> {
        let digest = Digest::of(manifest);
        let req = Request::new(
            Method::PUT,
            self.url(repository, &format!("manifests/{digest}")),
            Scope::push(repository),
        )
        .header(CONTENT_TYPE, HeaderValue::from_str(media_type)?)
        .body(Body::Bytes(Bytes::copy_from_slice(manifest)));
        let resp = self.send(&req).await?;
        let resp = self
            .expect(resp, &req, &[StatusCode::CREATED, StatusCode::OK], repository)
            .await?;
        Ok(resp.headers().contains_key("oci-subject"))
    }

    /// GET `/v2/<repo>/referrers/<digest>[?artifactType=T]`: the referrers index, or `None`
    /// when the registry has no referrers API (404).
    pub async fn get_referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<u8>>> {
        let mut url = self.url(repository, &format!("referrers/{subject}"));
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let req = Request::new(Method::GET, url, Scope::pull(repository))
            .header(ACCEPT, HeaderValue::from_static(INDEX_MEDIA_TYPE));
        let resp = self.send(&req).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.expect(resp, &req, &[StatusCode::OK], repository).await?;
        let body = read_limited(resp, MAX_INDEX).await?;
        if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
            bail!("{} answered a referrers list that is not JSON", display_url(&req.url));
        }
        Ok(Some(body))
    }
}

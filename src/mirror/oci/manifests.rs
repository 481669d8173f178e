//! Manifests: GET and PUT by tag or digest, for OCI and Docker v2 media types, byte for byte.

use anyhow::{Result, bail};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::{Body, Client, Request};
use super::reference::validate_tag;
use super::transport::{display_url, read_limited};
use crate::digest::Digest;
use crate::spec::MANIFEST_MEDIA_TYPE;

/// Largest manifest accepted (the distribution spec suggests registries accept at least 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// The `Accept` header for manifest requests: OCI and Docker v2, images and indexes.
fn accept() -> HeaderValue {
    HeaderValue::from_static(
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
         application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
    )
}

/// A manifest as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its media type (from `Content-Type`, else the document's `mediaType`).
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

/// Checks a manifest reference: a tag or a `sha256:` digest.
fn validate_reference(reference: &str) -> Result<()> {
    if reference.contains(':') {
        reference.parse::<Digest>()?;
        Ok(())
    } else {
        validate_tag(reference).map_err(anyhow::Error::msg)
    }
}

impl Client {
    /// GET `/v2/<repo>/manifests/<tag or digest>`; `None` when the tag or the repository
    /// does not exist. The bytes are checked against the digest asked for, or the
    /// `Docker-Content-Digest` header.
    pub async fn get_manifest(&self, repository: &str, reference: &str) -> Result<Option<Manifest>> {
        validate_reference(reference)?;
        let req = Request::new(
            Method::GET,
            self.url(repository, &format!("manifests/{reference}")),
            Scope::pull(repository),
        )
        .header(ACCEPT, accept());
        let Some(resp) = self.send_found(&req, repository).await? else {
            return Ok(None);
        };
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(resp, MAX_MANIFEST).await?;
        let digest = Digest::of(&bytes);
        let expected = reference
            .parse::<Digest>()
            .ok()
            .map(|d| d.to_string())
            .or(header_digest);
        if let Some(expected) = expected
            && expected != digest.to_string()
        {
            bail!(
                "manifest {reference} from {} has digest {digest}, the registry said {expected}",
                display_url(&req.url)
            );
        }
        let media_type = match content_type
            .filter(|t| !t.is_empty() && t != "application/json" && t != "application/octet-stream")
        {
            Some(t) => t,
            None => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string()),
        };
        Ok(Some(Manifest {
            media_type,
            digest,
            bytes,
        }))
    }

    /// PUT `/v2/<repo>/manifests/<tag or digest>` with `Content-Type: media_type`; returns the
    /// manifest's digest. The registry refuses a manifest whose blobs it lacks
    /// (`MANIFEST_BLOB_UNKNOWN`), so a tag never points at missing content.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Digest> {
        Ok(self
            .put_manifest_answer(repository, reference, media_type, manifest)
            .await?
            .0)
    }

    /// [`Client::put_manifest`], also returning whether the registry answered `OCI-Subject`,
    /// i.e. indexed the manifest's `subject` for the referrers API.
    pub async fn put_manifest_answer(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<(Digest, bool)> {
        validate_reference(reference)?;
        if manifest.len() > MAX_MANIFEST {
            bail!(
                "manifest for {reference} is {} bytes, more than the {MAX_MANIFEST} registries accept",
                manifest.len()
            );
        }
        let digest = Digest::of(manifest);
        let req = Request::new(
            Method::PUT,
            self.url(repository, &format!("manifests/{reference}")),
            Scope::push(repository),
        )
        .header(CONTENT_TYPE, HeaderValue::from_str(media_type)?)
        .body(Body::Bytes(Bytes::copy_from_slice(manifest)));
        let resp = self.send(&req).await?;
        let resp = self
            .expect(resp, &req, &[StatusCode::CREATED, StatusCode::OK], repository)
            .await?;
        if let Some(got) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && got != digest.to_string()
        {
            bail!(
                "{} stored the manifest as {got}, expected {digest}",
                display_url(&req.url)
            );
        }
        Ok((digest, resp.headers().contains_key("oci-subject")))
    }

    /// HEAD `/v2/<repo>/manifests/<tag or digest>`: the manifest's digest (from
    /// `Docker-Content-Digest`), `None` when the tag or repository does not exist. A registry
    /// that sends no digest header is asked with a GET, which computes it.
    pub async fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Option<Digest>> {
        validate_reference(reference)?;
        let req = Request::new(
            Method::HEAD,
            self.url(repository, &format!("manifests/{reference}")),
            Scope::pull(repository),
        )
        .header(ACCEPT, accept());
        let Some(resp) = self.send_found(&req, repository).await? else {
            return Ok(None);
        };
        match resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
        {
            Some(digest) => Ok(Some(digest)),
            None => Ok(self.get_manifest(repository, reference).await?.map(|m| m.digest)),
        }
    }

    /// DELETE `/v2/<repo>/manifests/<digest>`: removes the manifest and every tag naming it.
    /// `Ok(false)` when the registry does not have it. A registry with deletes disabled
    /// (405 `UNSUPPORTED`) is an error saying so.
    pub async fn delete_manifest(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let req = Request::new(
            Method::DELETE,
            self.url(repository, &format!("manifests/{digest}")),
            Scope::delete(repository),
        );
        let resp = self.send(&req).await?;
        deleted(self, resp, &req, repository).await
    }
}

/// The outcome of a DELETE: `true` when done (202), `false` when there was nothing to
/// delete (404), an error naming the setting when the registry refuses deletes (405).
pub(crate) async fn deleted(client: &Client, resp: reqwest::Response, req: &Request, repository: &str) -> Result<bool> {
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(false),
        StatusCode::METHOD_NOT_ALLOWED => bail!(
            "{} refused DELETE {}: deletes are disabled on this registry (docker-registry: \
             storage.delete.enabled: true, or REGISTRY_STORAGE_DELETE_ENABLED=true)",
            client.registry.host,
            display_url(&req.url)
        ),
        _ => {
            client
                .expect(
                    resp,
                    req,
                    &[StatusCode::ACCEPTED, StatusCode::OK, StatusCode::NO_CONTENT],
                    repository,
                )
                .await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        validate_reference("pkg-1.0-abc").unwrap();
        validate_reference(&Digest::of(b"").to_string()).unwrap();
        assert!(validate_reference("sha256:short").is_err());
        assert!(validate_reference("-bad").is_err());
        assert!(validate_reference("a/b").is_err());
    }
}

//! The referrers API (`GET /v2/<repo>/referrers/<digest>`, distribution spec 1.1): the
//! manifests whose `subject` is a given manifest (signatures, SBOMs). Registries without it
//! answer 404; their clients use the `sha256-<hex>` tag schema instead. (Whether a pushed
//! manifest's `subject` was indexed: [`Client::put_manifest_answer`].)

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};

use super::auth::Scope;
use super::client::{Client, Request};
use super::tags::next_page;
use super::transport::{display_url, read_limited};
use crate::digest::Digest;
use crate::spec::{Descriptor, INDEX_MEDIA_TYPE, Index};

/// Largest page body accepted.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Most pages read before assuming the registry loops.
const MAX_PAGES: usize = 1000;

impl Client {
    /// The descriptors the referrers API lists for `digest`, across `Link` pages; `None`
    /// when the registry does not implement the API (404: the spec forbids a 404 from a
    /// registry that does).
    pub async fn referrers(&self, repository: &str, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let mut url = self.url(repository, &format!("referrers/{digest}"));
        let mut found = Vec::new();
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_PAGES {
            if !seen.insert(url.to_string()) {
                bail!(
                    "the referrers of {digest} on {} link back to a page already read",
                    self.registry.host
                );
            }
            let req = Request::new(Method::GET, url.clone(), Scope::pull(repository))
                .header(ACCEPT, HeaderValue::from_static(INDEX_MEDIA_TYPE));
            let Some(resp) = self.send_found(&req, repository).await? else {
                return Ok(None);
            };
            let next = next_page(&resp, &url);
            let body = read_limited(resp, MAX_PAGE_BYTES).await?;
            let page: Index = serde_json::from_slice(&body)
                .with_context(|| format!("bad referrers list from {}", display_url(&url)))?;
            found.extend(page.manifests);
            match next {
                Some(next) => url = next,
                None => return Ok(Some(found)),
            }
        }
        bail!(
            "the referrers of {digest} on {} have more than {MAX_PAGES} pages",
            self.registry.host
        )
    }
}

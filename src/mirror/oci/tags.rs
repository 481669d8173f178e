//! The tag list, the registry-side index of a mirror: `GET /v2/<repo>/tags/list`, following
//! `Link: <...>; rel="next"` pages (docker-registry 2.8 ignores `n=` and sends one page).

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use reqwest::header::LINK;
use reqwest::{Method, StatusCode, Url};

use super::auth::Scope;
use super::client::{Client, Request};
use super::transport::{display_url, read_limited};

/// Tags asked for per page.
const PAGE_SIZE: u32 = 1000;
/// Most pages read before assuming the registry loops.
const MAX_PAGES: usize = 10_000;
/// Largest page body accepted.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(serde::Deserialize)]
struct TagPage {
    tags: Option<Vec<String>>,
}

impl Client {
    /// Every tag of `repository`, across all pages; empty when the repository does not
    /// exist yet (a mirror nobody pushed to).
    pub async fn list_tags(&self, repository: &str) -> Result<BTreeSet<String>> {
        let mut url = self.url(repository, "tags/list");
        url.query_pairs_mut().append_pair("n", &PAGE_SIZE.to_string());
        let mut tags = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_PAGES {
            if !seen.insert(url.to_string()) {
                bail!(
                    "the tag list of {repository} on {} links back to a page already read",
                    self.registry.host
                );
            }
            let req = Request::new(Method::GET, url.clone(), Scope::pull(repository));
            let resp = self.send(&req).await?;
            if resp.status() == StatusCode::NOT_FOUND && tags.is_empty() {
                return Ok(tags);
            }
            let resp = self.expect(resp, &req, &[StatusCode::OK], repository).await?;
            let next = next_page(&resp, &url);
            let body = read_limited(resp, MAX_PAGE_BYTES).await?;
            let page: TagPage =
                serde_json::from_slice(&body).with_context(|| format!("bad tag list from {}", display_url(&url)))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => url = next,
                None => return Ok(tags),
            }
        }
        bail!(
            "the tag list of {repository} on {} has more than {MAX_PAGES} pages",
            self.registry.host
        )
    }
}

/// The `rel="next"` page named by `resp`'s `Link` headers, resolved against `url`.
pub(crate) fn next_page(resp: &reqwest::Response, url: &Url) -> Option<Url> {
    resp.headers()
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| next_link(v, url))
}

/// The `rel="next"` target of a `Link` header value, resolved against `base`
/// (`</v2/r/tags/list?n=2&last=b>; rel="next"`).
fn next_link(value: &str, base: &Url) -> Option<Url> {
    for link in value.split(',') {
        let link = link.trim();
        let Some(rest) = link.strip_prefix('<') else { continue };
        let Some((target, params)) = rest.split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=").is_some_and(|rel| {
                rel.trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return base.join(target.trim()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let base = Url::parse("https://h:5000/v2/a/b/tags/list?n=2").unwrap();
        assert_eq!(
            next_link(r#"</v2/a/b/tags/list?n=2&last=t2>; rel="next""#, &base)
                .unwrap()
                .as_str(),
            "https://h:5000/v2/a/b/tags/list?n=2&last=t2"
        );
        assert_eq!(
            next_link(r#"<https://other/x?last=z>; rel=next, </prev>; rel="prev""#, &base)
                .unwrap()
                .as_str(),
            "https://other/x?last=z"
        );
        assert_eq!(
            next_link(r#"</prev>; rel="prev", </n>; title="x"; rel="first next""#, &base)
                .unwrap()
                .as_str(),
            "https://h:5000/n"
        );
        assert!(next_link(r#"</prev>; rel="prev""#, &base).is_none());
        assert!(next_link("garbage", &base).is_none());
    }
}

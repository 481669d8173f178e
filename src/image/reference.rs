//! Where an image comes from or goes to: `scratch`, `oci://HOST/REPO:TAG`,
//! `oci+http://HOST/REPO:TAG`, `oci-layout:DIR[:TAG]`, `docker-archive:FILE[:NAME[:TAG]]`.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, bail};

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// The empty image.
    Scratch,
    /// A registry repository (`url` is the mirror URL `oci://HOST/REPO`) and a tag.
    Registry {
        /// `oci://HOST/REPO` or `oci+http://HOST/REPO`.
        url: String,
        /// The tag.
        tag: String,
    },
    /// An OCI image layout directory and a tag (its `ref.name`).
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag; `None` means "the default for this use" (the image name).
        tag: Option<String>,
    },
    /// A `docker save`-style tar archive and the name it is loaded under.
    DockerArchive {
        /// The archive file.
        file: PathBuf,
        /// `NAME[:TAG]` recorded as the archive's RepoTags.
        name: Option<String>,
    },
}

impl ImageRef {
    /// Parses a reference as written on the command line or in `images: base:`.
    /// A registry reference with credentials in it is refused (and never shown unmasked).
    pub fn parse(s: &str) -> Result<ImageRef> {
        let shown = crate::net::redact::url(s);
        if crate::net::redact::userinfo(s).is_some() {
            bail!(
                "image reference `{shown}` carries credentials: {}",
                crate::net::redact::REGISTRY_HINT
            );
        }
        if s == "scratch" {
            return Ok(ImageRef::Scratch);
        }
        for scheme in ["oci://", "oci+http://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let slash = rest.find('/').unwrap_or(rest.len());
                let Some(colon) = rest[slash..].rfind(':').map(|c| c + slash) else {
                    bail!("image reference `{shown}` has no tag: write {scheme}HOST/REPO:TAG");
                };
                return Ok(ImageRef::Registry {
                    url: format!("{scheme}{}", &rest[..colon]),
                    tag: rest[colon + 1..].to_string(),
                });
            }
        }
        if let Some(rest) = s.strip_prefix("oci-layout:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') && !t.is_empty() => (d, Some(t.to_string())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                bail!("image reference `{s}` has no directory: write oci-layout:DIR[:TAG]");
            }
            return Ok(ImageRef::Layout { dir: dir.into(), tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, name) = match rest.split_once(':') {
                Some((f, n)) if !n.is_empty() => (f, Some(n.to_string())),
                _ => (rest, None),
            };
            if file.is_empty() {
                bail!("image reference `{s}` has no file: write docker-archive:FILE[:NAME[:TAG]]");
            }
            return Ok(ImageRef::DockerArchive {
                file: file.into(),
                name,
            });
        }
        bail!(
            "unsupported image reference `{shown}`: use scratch, oci://HOST/REPO:TAG, oci+http://HOST/REPO:TAG, oci-layout:DIR[:TAG] or docker-archive:FILE[:NAME[:TAG]]"
        )
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Scratch => write!(f, "scratch"),
            ImageRef::Registry { url, tag } => write!(f, "{url}:{tag}"),
            ImageRef::Layout { dir, tag: Some(t) } => write!(f, "oci-layout:{}:{t}", dir.display()),
            ImageRef::Layout { dir, tag: None } => write!(f, "oci-layout:{}", dir.display()),
            ImageRef::DockerArchive { file, name: Some(n) } => write!(f, "docker-archive:{}:{n}", file.display()),
            ImageRef::DockerArchive { file, name: None } => write!(f, "docker-archive:{}", file.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(ImageRef::parse("scratch").unwrap(), ImageRef::Scratch);
        assert_eq!(
            ImageRef::parse("oci://127.0.0.1:5000/a/b:v1").unwrap(),
            ImageRef::Registry {
                url: "oci://127.0.0.1:5000/a/b".into(),
                tag: "v1".into()
            }
        );
        assert!(ImageRef::parse("oci://127.0.0.1:5000/a/b").is_err());
        assert_eq!(
            ImageRef::parse("oci-layout:/tmp/l:t").unwrap(),
            ImageRef::Layout {
                dir: "/tmp/l".into(),
                tag: Some("t".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci-layout:/tmp/l").unwrap(),
            ImageRef::Layout {
                dir: "/tmp/l".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:/tmp/x.tar:demo:v1").unwrap(),
            ImageRef::DockerArchive {
                file: "/tmp/x.tar".into(),
                name: Some("demo:v1".into())
            }
        );
        assert!(ImageRef::parse("docker://x").is_err());
    }
}

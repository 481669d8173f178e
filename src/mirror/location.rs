//! Where content is: one parsed type for mirror URLs and image references.
//!
//! Mirrors: `file://DIR` or a plain path (relative to a base directory), `s3://BUCKET/PREFIX`,
//! `oci://HOST/REPO`, `oci+http://HOST/REPO`. Images: `scratch`, `oci://HOST/REPO:TAG`,
//! `oci+http://HOST/REPO:TAG`, `oci-layout:DIR[:TAG]`, `docker-archive:FILE[:NAME[:TAG]]`.
//! Wherever a registry is named (a mirror, a base, `--to`), `docker://NAME` is accepted too,
//! and Docker Hub and GHCR names are normalized ([`Reference::parse`]).
//! The scheme is dispatched here once; the registry grammar is [`Reference::parse`]'s and
//! the bucket grammar the S3 store's. A URL with credentials in it is refused, naming where
//! they go instead, and is only ever shown masked ([`crate::net::redact`]).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::oci::{Reference, Target};
use crate::net::redact;

/// A parsed mirror URL or image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An OCI image layout in a directory (`file://DIR`, a plain path, `oci-layout:DIR[:TAG]`).
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag (its `ref.name`); `None` for a mirror, or "the default for this use".
        tag: Option<String>,
    },
    /// An OCI image layout in an S3 bucket (`s3://BUCKET[/PREFIX]`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without surrounding slashes (may be empty).
        prefix: String,
    },
    /// A registry repository, with a tag for an image (`oci://HOST/REPO[:TAG]`).
    Registry(Reference),
    /// The empty image (`scratch`; image references only).
    Scratch,
    /// A `docker save`-style tar archive and the name it is loaded under (image targets only).
    DockerArchive {
        /// The archive file.
        file: PathBuf,
        /// `NAME[:TAG]` recorded as the archive's RepoTags.
        name: Option<String>,
    },
}

impl Location {
    /// Parses a mirror URL; a plain path (no scheme) is relative to `base`.
    pub fn mirror(url: &str, base: &Path) -> Result<Location> {
        if redact::userinfo(url).is_some() {
            let hint = if url.starts_with("s3://") {
                redact::S3_HINT
            } else {
                redact::REGISTRY_HINT
            };
            bail!("the mirror URL `{}` carries credentials: {hint}", redact::url(url));
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Location::Layout {
                dir: base.join(path),
                tag: None,
            });
        }
        if is_registry(url) {
            let reference = Reference::parse(url)?;
            if reference.target != Target::Repository {
                bail!(
                    "mirror URL `{url}` names a tag or digest; a mirror is a whole repository: {}",
                    reference.repository_url()
                );
            }
            return Ok(Location::Registry(reference));
        }
        if url.starts_with("s3://") {
            let (bucket, prefix) = super::s3::parse_url(url)?;
            return Ok(Location::S3 { bucket, prefix });
        }
        if url.contains("://") {
            let scheme = url.split("://").next().unwrap_or_default();
            bail!(
                "unsupported mirror URL `{}`: scheme `{scheme}` is not one of file://, s3://, oci://, oci+http://, docker://",
                redact::url(url)
            );
        }
        Ok(Location::Layout {
            dir: base.join(url),
            tag: None,
        })
    }

    /// Parses an image reference as written on the command line or in `images: base:`.
    pub fn image(s: &str) -> Result<Location> {
        let shown = redact::url(s);
        if redact::userinfo(s).is_some() {
            bail!(
                "image reference `{shown}` carries credentials: {}",
                redact::REGISTRY_HINT
            );
        }
        if s == "scratch" {
            return Ok(Location::Scratch);
        }
        if is_registry(s) {
            let reference = Reference::parse(s)?;
            if !matches!(reference.target, Target::Tag(_)) {
                let scheme = &s[..s.find("://").map_or(0, |i| i + 3)];
                let form = if scheme == "docker://" {
                    "NAME:TAG"
                } else {
                    "HOST/REPO:TAG"
                };
                bail!("image reference `{shown}` has no tag: write {scheme}{form}");
            }
            return Ok(Location::Registry(reference));
        }
        if let Some(rest) = s.strip_prefix("oci-layout:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') && !t.is_empty() => (d, Some(t.to_string())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                bail!("image reference `{s}` has no directory: write oci-layout:DIR[:TAG]");
            }
            return Ok(Location::Layout { dir: dir.into(), tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, name) = match rest.split_once(':') {
                Some((f, n)) if !n.is_empty() => (f, Some(n.to_string())),
                _ => (rest, None),
            };
            if file.is_empty() {
                bail!("image reference `{s}` has no file: write docker-archive:FILE[:NAME[:TAG]]");
            }
            return Ok(Location::DockerArchive {
                file: file.into(),
                name,
            });
        }
        bail!(
            "unsupported image reference `{shown}`: use scratch, oci://HOST/REPO:TAG, oci+http://HOST/REPO:TAG, docker://NAME:TAG, oci-layout:DIR[:TAG] or docker-archive:FILE[:NAME[:TAG]]"
        )
    }

    /// The tag an image reference names, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Location::Layout { tag, .. } => tag.as_deref(),
            Location::Registry(Reference {
                target: Target::Tag(t), ..
            }) => Some(t),
            _ => None,
        }
    }
}

/// Whether `s` uses one of the registry schemes.
fn is_registry(s: &str) -> bool {
    ["oci://", "oci+http://", "oci+https://", "docker://"]
        .iter()
        .any(|scheme| s.starts_with(scheme))
}

/// The reference form: `oci-layout:DIR[:TAG]` for a layout (a `file://` mirror too; the
/// mirror itself says `file://DIR` in [`super::Mirror::location`]), `s3://BUCKET/PREFIX`,
/// `oci://HOST/REPO[:TAG]`, `scratch`, `docker-archive:FILE[:NAME]`.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Layout { dir, tag: None } => write!(f, "oci-layout:{}", dir.display()),
            Location::Layout { dir, tag: Some(t) } => write!(f, "oci-layout:{}:{t}", dir.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Registry(reference) => write!(f, "{reference}"),
            Location::Scratch => write!(f, "scratch"),
            Location::DockerArchive { file, name: Some(n) } => write!(f, "docker-archive:{}:{n}", file.display()),
            Location::DockerArchive { file, name: None } => write!(f, "docker-archive:{}", file.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(s: &str) -> Location {
        Location::Registry(Reference::parse(s).unwrap())
    }

    #[test]
    fn parses_every_image_form() {
        assert_eq!(Location::image("scratch").unwrap(), Location::Scratch);
        let r = Location::image("oci://127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(r, registry("oci://127.0.0.1:5000/a/b:v1"));
        assert_eq!(
            (r.tag(), r.to_string().as_str()),
            (Some("v1"), "oci://127.0.0.1:5000/a/b:v1")
        );
        let err = Location::image("oci://127.0.0.1:5000/a/b").unwrap_err().to_string();
        assert!(err.contains("has no tag: write oci://HOST/REPO:TAG"), "{err}");
        assert_eq!(
            Location::image("oci-layout:/tmp/l:t").unwrap(),
            Location::Layout {
                dir: "/tmp/l".into(),
                tag: Some("t".into())
            }
        );
        let untagged = Location::image("oci-layout:/tmp/l").unwrap();
        assert_eq!(
            untagged,
            Location::Layout {
                dir: "/tmp/l".into(),
                tag: None
            }
        );
        assert_eq!(untagged.tag(), None);
        assert_eq!(untagged.to_string(), "oci-layout:/tmp/l");
        assert_eq!(
            Location::image("docker-archive:/tmp/x.tar:demo:v1").unwrap(),
            Location::DockerArchive {
                file: "/tmp/x.tar".into(),
                name: Some("demo:v1".into())
            }
        );
        assert!(Location::image("docker://x").is_err(), "no tag");
        assert!(Location::image("dockerx://x:1").is_err());
    }

    #[test]
    fn every_place_takes_the_same_registry_forms() {
        let base = Path::new("/stack");
        for (mirror, image) in [
            ("oci://docker.io/team/mirror", "oci://docker.io/team/mirror:t"),
            ("docker://team/mirror", "docker://team/mirror:t"),
            (
                "oci://index.docker.io/team/mirror",
                "oci://index.docker.io/team/mirror:t",
            ),
        ] {
            let Location::Registry(m) = Location::mirror(mirror, base).unwrap() else {
                panic!("{mirror}")
            };
            let Location::Registry(i) = Location::image(image).unwrap() else {
                panic!("{image}")
            };
            assert_eq!(
                (m.registry.host.as_str(), m.repository.as_str()),
                ("registry-1.docker.io", "team/mirror")
            );
            assert_eq!((&i.registry, &i.repository), (&m.registry, &m.repository));
        }
        let Location::Registry(m) = Location::mirror("oci://ghcr.io/Org/Repo/demo-mirror", base).unwrap() else {
            panic!()
        };
        assert_eq!(m.repository, "org/repo/demo-mirror");
        let Location::Registry(i) = Location::image("oci+http://docker.io/alpine:3").unwrap() else {
            panic!()
        };
        assert_eq!(i.to_string(), "oci+http://registry-1.docker.io/library/alpine:3");
    }

    #[test]
    fn parses_every_mirror_form() {
        let base = Path::new("/stack");
        let layout = |dir: &str| Location::Layout {
            dir: dir.into(),
            tag: None,
        };
        assert_eq!(Location::mirror("file:///m", base).unwrap(), layout("/m"));
        assert_eq!(Location::mirror("rel/m", base).unwrap(), layout("/stack/rel/m"));
        assert_eq!(
            Location::mirror("s3://b/p/", base).unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p".into()
            }
        );
        assert_eq!(
            Location::mirror("oci+http://h:5000/r", base).unwrap(),
            registry("oci+http://h:5000/r")
        );
        let err = Location::mirror("oci://h/r:t", base).unwrap_err().to_string();
        assert!(err.contains("names a tag or digest"), "{err}");
        let err = Location::mirror("ftp://x/y", base).unwrap_err().to_string();
        assert!(err.contains("scheme `ftp` is not one of"), "{err}");
    }

    #[test]
    fn credentials_are_refused_and_masked() {
        for (s, hint) in [
            ("oci://u:s3cr3t@h/r", "docker login"),
            ("s3://k:s3cr3t@b/p", "AWS_ACCESS_KEY_ID"),
        ] {
            let err = Location::mirror(s, Path::new("/")).unwrap_err().to_string();
            assert!(
                err.contains("***@") && err.contains(hint) && !err.contains("s3cr3t"),
                "{err}"
            );
        }
        let err = Location::image("oci://u:s3cr3t@h/r:t").unwrap_err().to_string();
        assert!(err.contains("carries credentials") && !err.contains("s3cr3t"), "{err}");
    }
}

//! Target platforms (`linux/amd64`, `linux/arm64`, `linux/arm/v7`): what a stack is built
//! for, which manifest of a multi-arch base (an OCI image index or a Docker manifest list)
//! an image starts from, and what an assembled image index lists.
//!
//! Names follow the OCI image spec (GOOS/GOARCH values); the usual aliases are accepted
//! (`x86_64`, `aarch64`, `armhf`). The platform part of a package hash keeps the form it
//! always had, `<rust arch>-<os>` (`x86_64-linux`), so a native build's hashes do not change.

use std::fmt;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::spec::Descriptor;

/// An OS, CPU architecture and optional variant, as in an index's `platform` object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// OCI architecture name: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`.
    pub architecture: String,
    /// CPU variant (`v7` for `arm`); `None` for the architecture's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the machine stackci runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = normalize_arch(std::env::consts::ARCH, None);
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture,
            variant,
        }
    }

    /// Parses `OS/ARCH[/VARIANT]` (`linux/arm64`, `linux/arm/v7`); a bare `ARCH` means Linux.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => bail!("platform `{s}` is not OS/ARCH[/VARIANT], e.g. linux/arm64"),
        };
        let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok(os) || !ok(arch) || variant.is_some_and(|v| !ok(v)) {
            bail!("platform `{s}` is not OS/ARCH[/VARIANT], e.g. linux/arm64");
        }
        let (architecture, variant) = normalize_arch(&arch.to_ascii_lowercase(), variant);
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            architecture,
            variant,
        })
    }

    /// Parses a comma-separated list (`linux/amd64,linux/arm64`), without duplicates.
    pub fn parse_list(s: &str) -> Result<Vec<Platform>> {
        let mut out: Vec<Platform> = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let p = Platform::parse(part)?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            bail!("no platform in `{s}`");
        }
        Ok(out)
    }

    /// The platform part of a package hash: `<rust arch>-<os>` (`x86_64-linux`,
    /// `aarch64-linux`), with `-<variant>` for a non-default variant.
    pub fn hash_name(&self) -> String {
        let arch = match self.architecture.as_str() {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            "386" => "x86",
            "ppc64le" | "ppc64" => "powerpc64",
            other => other,
        };
        match &self.variant {
            Some(v) => format!("{arch}-{}-{v}", self.os),
            None => format!("{arch}-{}", self.os),
        }
    }

    /// This platform as an index entry's `platform` JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a platform always serializes")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// OCI architecture and variant for an architecture name or alias; the default variant of
/// an architecture (`arm64/v8`, `arm/v7`) is written as none.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let (arch, implied) = match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64", None),
        "aarch64" | "arm64" => ("arm64", None),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v6")),
        "i386" | "i686" | "x86" | "386" => ("386", None),
        "powerpc64" | "ppc64le" => ("ppc64le", None),
        other => (other, None),
    };
    let variant = variant.map(str::to_ascii_lowercase).or(implied.map(str::to_string));
    let variant = match (arch, variant.as_deref()) {
        ("arm64", Some("v8" | "8")) | ("arm", Some("v7" | "7")) | ("amd64", Some("v1")) => None,
        _ => variant,
    };
    (arch.to_string(), variant)
}

/// The `platform` object of an index entry, normalized; `None` when it has none.
pub fn of_descriptor(desc: &Descriptor) -> Option<Platform> {
    let p = desc.extra.get("platform")?;
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    let variant = p.get("variant").and_then(|v| v.as_str());
    let (architecture, variant) = normalize_arch(arch, variant);
    Some(Platform {
        os: os.to_string(),
        architecture,
        variant,
    })
}

/// The entry of an image index (or Docker manifest list) for `want`; `what` names the index
/// in the error, which lists the platforms it does have.
pub fn select<'a>(manifests: &'a [Descriptor], want: &Platform, what: &str) -> Result<&'a Descriptor> {
    if let Some(found) = manifests.iter().find(|d| of_descriptor(d).is_some_and(|p| *want == p)) {
        return Ok(found);
    }
    let have: Vec<String> = manifests
        .iter()
        .filter_map(of_descriptor)
        // Attestation manifests carry `unknown/unknown`.
        .filter(|p| p.os != "unknown")
        .map(|p| p.to_string())
        .collect();
    let have = if have.is_empty() {
        "none".to_string()
    } else {
        have.join(", ")
    };
    bail!("{what} is a multi-platform index without a manifest for {want} (it has: {have}); choose one with --platform")
}

/// The platforms of `--platform` (comma-separated), or the host's alone.
pub fn from_flag(flag: Option<&str>) -> Result<Vec<Platform>> {
    match flag {
        Some(s) => Platform::parse_list(s).with_context(|| format!("--platform `{s}`")),
        None => Ok(vec![Platform::host()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(platform: serde_json::Value) -> Descriptor {
        Descriptor {
            media_type: crate::spec::MANIFEST_MEDIA_TYPE.into(),
            digest: crate::digest::Digest::of(platform.to_string().as_bytes()),
            size: 1,
            annotations: Default::default(),
            extra: [("platform".to_string(), platform)].into(),
        }
    }

    #[test]
    fn parses_names_and_aliases() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", None)
        );
        assert_eq!(Platform::parse("linux/aarch64").unwrap(), p);
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap(), p);
        assert_eq!(Platform::parse("arm64").unwrap(), p);
        assert_eq!(Platform::parse("linux/arm/v7").unwrap().to_string(), "linux/arm");
        assert_eq!(Platform::parse("linux/arm/v6").unwrap().to_string(), "linux/arm/v6");
        assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        for bad in ["", "linux/", "a/b/c/d", "linux/arm 64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        let list = Platform::parse_list("linux/amd64, linux/arm64,linux/amd64").unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn hash_names_keep_the_old_form() {
        assert_eq!(Platform::parse("linux/amd64").unwrap().hash_name(), "x86_64-linux");
        assert_eq!(Platform::parse("linux/arm64").unwrap().hash_name(), "aarch64-linux");
        assert_eq!(
            Platform::host().hash_name(),
            format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
        );
        assert_eq!(Platform::parse("linux/arm/v6").unwrap().hash_name(), "arm-linux-v6");
    }

    #[test]
    fn selects_from_an_index() {
        let list = vec![
            desc(serde_json::json!({"os":"linux","architecture":"amd64"})),
            desc(serde_json::json!({"os":"linux","architecture":"arm","variant":"v7"})),
            desc(serde_json::json!({"os":"linux","architecture":"arm64","variant":"v8"})),
            desc(serde_json::json!({"os":"unknown","architecture":"unknown"})),
        ];
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(select(&list, &arm64, "x").unwrap(), &list[2]);
        assert_eq!(
            select(&list, &Platform::parse("linux/arm").unwrap(), "x").unwrap(),
            &list[1]
        );
        let err = select(&list, &Platform::parse("linux/s390x").unwrap(), "base `b`")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("base `b` is a multi-platform index without a manifest for linux/s390x")
                && err.contains("linux/amd64, linux/arm, linux/arm64)"),
            "{err}"
        );
    }
}

//! `stackci verify [PKG...]`: each package's cosign signature, checked against the
//! trusted keys (and, with `--image`, an image's and its SBOM's).

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::Context;
use crate::cli::VerifyArgs;
use crate::digest::Digest;
use crate::image::sbom;
use crate::mirror::Mirror;
use crate::mirror::location::Location;
use crate::mirror::open::open_location;
use crate::trust::verify::{self, Rejected};
use crate::trust::{PublicKey, Trust, trusted_key_paths};

/// `verify --json`, as documented in docs/json.md.
#[derive(Debug, Serialize)]
struct VerifyJson {
    mirror: String,
    keys: Vec<KeyJson>,
    packages: Vec<PackageJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageJson>,
    counts: Counts,
}

#[derive(Debug, Serialize)]
struct KeyJson {
    source: String,
    fingerprint: String,
}

#[derive(Debug, Serialize)]
struct PackageJson {
    name: String,
    version: String,
    hash: String,
    tag: String,
    /// verified | unsigned | invalid | missing
    status: &'static str,
    digest: Option<String>,
    key: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct ImageJson {
    reference: String,
    digest: String,
    status: &'static str,
    key: Option<String>,
    reason: Option<String>,
    sbom: Option<Box<ImageJson>>,
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    verified: usize,
    unsigned: usize,
    invalid: usize,
    missing: usize,
}

/// Checks the packages (and `--image`); exit 1 when any is unsigned or invalid, or a
/// package named on the command line is missing.
pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<ExitCode> {
    let keys = if args.key.is_empty() {
        Trust::load(&ctx.stack, false)?.keys().to_vec()
    } else {
        args.key
            .iter()
            .map(|p| PublicKey::load(p))
            .collect::<Result<Vec<_>>>()?
    };
    if keys.is_empty() {
        bail!(
            "no trusted keys: pass --key FILE, set STACKCI_TRUST_KEYS, or list them under \
             `trust: {{ keys: }}` in {} (looked for: {})",
            ctx.stack.path.display(),
            trusted_key_paths(&ctx.stack)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let named = !args.packages.is_empty();
    let targets = if named {
        ctx.packages(&args.packages)?
    } else {
        (0..ctx.stack.packages.len())
            .filter(|&i| !ctx.stack.packages[i].is_external())
            .collect()
    };
    let mirror = ctx.mirror.as_ref();
    let mut counts = Counts::default();
    let mut packages = Vec::new();
    for i in targets {
        let pkg = &ctx.stack.packages[i];
        let tag = pkg.tag();
        let manifest = mirror
            .get_manifest(&tag)
            .with_context(|| format!("reading `{tag}` from {}", mirror.location()))?;
        let (status, digest, key, reason) = match manifest {
            None => {
                counts.missing += 1;
                ("missing", None, None, Some(format!("not in {}", mirror.location())))
            }
            Some(bytes) => {
                let digest = Digest::of(&bytes);
                let (status, key, reason) = check(mirror, &digest, &keys, &mut counts);
                (status, Some(digest.to_string()), key, reason)
            }
        };
        packages.push(PackageJson {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            hash: pkg.hash.clone(),
            tag,
            status,
            digest,
            key,
            reason,
        });
    }
    let image = match &args.image {
        Some(reference) => Some(check_image(ctx, reference, &keys, &mut counts)?),
        None => None,
    };
    let doc = VerifyJson {
        mirror: mirror.location(),
        keys: keys
            .iter()
            .map(|k| KeyJson {
                source: k.source.clone(),
                fingerprint: k.fingerprint(),
            })
            .collect(),
        packages,
        image,
        counts,
    };
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    print_text(&doc);
    let packages_failed = doc
        .packages
        .iter()
        .any(|p| matches!(p.status, "unsigned" | "invalid") || (named && p.status == "missing"));
    let image_ok = doc
        .image
        .as_ref()
        .is_none_or(|i| i.status == "verified" && i.sbom.as_ref().is_some_and(|s| s.status == "verified"));
    Ok(if !packages_failed && image_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One manifest's verdict: status, the key that signed it, or why not.
fn check(
    mirror: &dyn Mirror,
    digest: &Digest,
    keys: &[PublicKey],
    counts: &mut Counts,
) -> (&'static str, Option<String>, Option<String>) {
    match verify::verify(mirror, digest, keys) {
        Ok(v) => {
            counts.verified += 1;
            ("verified", Some(keys[v.key].describe()), None)
        }
        Err(Rejected { reasons, unsigned }) => {
            let status = if unsigned {
                counts.unsigned += 1;
                "unsigned"
            } else {
                counts.invalid += 1;
                "invalid"
            };
            (status, None, Some(reasons.join("; ")))
        }
    }
}

/// Checks an image's signature and its SBOM's.
fn check_image(ctx: &Context, reference: &str, keys: &[PublicKey], counts: &mut Counts) -> Result<ImageJson> {
    let location = Location::image(reference)?;
    if matches!(location, Location::Scratch | Location::DockerArchive { .. }) {
        bail!("--image takes oci://HOST/REPO:TAG or oci-layout:DIR:TAG (a docker archive holds no signatures)");
    }
    let target = open_location(&location, &ctx.mirror_options)?;
    let target = target.as_ref();
    let tag = location.tag().unwrap_or("latest");
    let bytes = target
        .get_manifest(tag)?
        .with_context(|| format!("image `{tag}` is not in {}", target.location()))?;
    let digest = Digest::of(&bytes);
    let (status, key, reason) = check(target, &digest, keys, counts);
    let sbom = match sbom::find(target, &digest)? {
        None => {
            counts.missing += 1;
            Some(Box::new(ImageJson {
                reference: format!("{location} (SBOM)"),
                digest: String::new(),
                status: "missing",
                key: None,
                reason: Some("no SBOM refers to the image".into()),
                sbom: None,
            }))
        }
        Some(desc) => {
            let (status, key, reason) = check(target, &desc.digest, keys, counts);
            Some(Box::new(ImageJson {
                reference: format!("{location} (SBOM)"),
                digest: desc.digest.to_string(),
                status,
                key,
                reason,
                sbom: None,
            }))
        }
    };
    Ok(ImageJson {
        reference: location.to_string(),
        digest: digest.to_string(),
        status,
        key,
        reason,
        sbom,
    })
}

/// One line per package (and image) on stderr, then the counts.
fn print_text(doc: &VerifyJson) {
    let line = |status: &str, what: &str, digest: Option<&str>, key: Option<&str>, reason: Option<&str>| {
        let detail = match (key, reason) {
            (Some(k), _) => format!("signed by {k}"),
            (None, Some(r)) => r.to_string(),
            (None, None) => String::new(),
        };
        eprintln!("{status:<9} {what} {} {detail}", digest.unwrap_or("-"));
    };
    for p in &doc.packages {
        line(
            p.status,
            &p.tag,
            p.digest.as_deref(),
            p.key.as_deref(),
            p.reason.as_deref(),
        );
    }
    let mut image = doc.image.as_ref();
    while let Some(i) = image {
        line(
            i.status,
            &i.reference,
            Some(&i.digest),
            i.key.as_deref(),
            i.reason.as_deref(),
        );
        image = i.sbom.as_deref();
    }
    let c = &doc.counts;
    eprintln!(
        "{} verified, {} unsigned, {} invalid, {} missing — mirror {}",
        c.verified, c.unsigned, c.invalid, c.missing, doc.mirror
    );
}

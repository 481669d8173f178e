//! `stackci image NAME --to REF`: assemble an image of the stack's `images:` section, sign
//! it and attach its SBOM.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};

use super::{Context, source_date_epoch};
use crate::cli::ImageArgs;
use crate::digest::Digest;
use crate::env_vars;
use crate::image::sbom::{self, SbomInput};
use crate::image::{self, Image, budget, target, verify};
use crate::mirror::Mirror;
use crate::mirror::location::Location;
use crate::mirror::open::open_location;
use crate::mirror::referrers::{self, Attached};
use crate::package::rfc3339;
use crate::spec::{self, MANIFEST_MEDIA_TYPE};
use crate::trust::Trust;

/// Assembles the image from the mirror's package layers (verified when keys are trusted),
/// writes it to `--to`, signs it (with `STACKCI_SIGNING_KEY`) and attaches its SBOM.
pub fn run(ctx: &Context, args: &ImageArgs) -> Result<ExitCode> {
    let spec = ctx.stack.images.get(&args.name).with_context(|| {
        let known: Vec<&str> = ctx.stack.images.keys().map(String::as_str).collect();
        format!(
            "no image `{}` in {} (images: {})",
            args.name,
            ctx.stack.path.display(),
            known.join(", ")
        )
    })?;
    let trust = Trust::load(&ctx.stack, true)?;
    let base_ref = Location::image(args.base.as_deref().unwrap_or(&spec.base))
        .with_context(|| format!("base of image `{}`", args.name))?;
    let (base, base_id) = read_base(ctx, &base_ref, &trust)?;
    let to = Location::image(&args.to)?;
    let scratch = ctx.state_dir().join("tmp").join("image");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mirror = ctx.shared_mirror();
    let sde = source_date_epoch()?;
    let image = image::assemble(&ctx.stack, &args.name, base, mirror, sde, &trust)?;
    let cache = verify::VerifiedCache::new(&ctx.state_dir());
    verify::verify_package_layers(&image, &cache, ctx.max_layer_size)
        .with_context(|| format!("checking the package layers of image `{}`", args.name))?;
    let members = image_members(ctx, &args.name);
    let layers = package_layers(ctx, &members, &image);
    let image = budget::limit_layers(&image, args.layer_budget, &scratch, ctx.max_layer_size)?;
    let written = target::write(&image, &to, &args.name, &ctx.mirror_options)
        .with_context(|| format!("writing image `{}` to {to}", args.name))?;
    let created = rfc3339(sde);
    let doc = sbom::spdx(&SbomInput {
        stack: &ctx.stack,
        image: &args.name,
        members: &members,
        layers: &layers,
        base: base_id,
        image_digest: &written.digest,
        created: &created,
    });
    let extras = attach(ctx, &to, &trust, &written.digest, &doc, &created)
        .with_context(|| format!("signing image `{}` and attaching its SBOM in {to}", args.name))?;
    let vars = crate::ci::env::Vars::from_process();
    if let Some(path) = vars.get(env_vars::GITHUB_OUTPUT).filter(|p| !p.is_empty()) {
        let key = format!("image-digest-{}", args.name);
        crate::ci::output::append_github_output(std::path::Path::new(path), &[(key, written.digest.to_string())])?;
    }
    if ctx.json {
        let doc = serde_json::json!({
            "image": args.name, "target": to.to_string(), "digest": written.digest.to_string(),
            "layers": image.layers.len(), "copied": written.copied, "mounted": written.mounted, "present": written.present,
            "signed": extras.signed, "sbom": extras.sbom,
        });
        println!("{doc}");
    } else {
        println!("{}", written.digest);
    }
    eprintln!(
        "image `{}` -> {to}: {} layers ({} copied, {} mounted, {} already there)",
        args.name,
        image.layers.len(),
        written.copied,
        written.mounted,
        written.present
    );
    for line in &extras.notes {
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the base image; a registry base that `trust: { bases: }` covers must carry a
/// valid signature, and is then read by the digest that was verified. Returns the base and
/// its reference and manifest digest (for the SBOM; `None` for `scratch`).
fn read_base(ctx: &Context, base_ref: &Location, trust: &Trust) -> Result<(Image, Option<(String, Digest)>)> {
    match base_ref {
        Location::Scratch => Ok((Image::scratch(), None)),
        Location::DockerArchive { .. } => bail!("a docker archive cannot be a base image; use oci-layout: or oci://"),
        Location::Layout { dir, tag } => {
            // A relative layout directory is relative to the stack's directory.
            let layout = Location::Layout {
                dir: ctx.stack.dir.join(dir),
                tag: tag.clone(),
            };
            let m: Arc<dyn Mirror> = Arc::from(open_location(&layout, &ctx.mirror_options)?);
            let tag = tag.as_deref().unwrap_or("latest");
            let digest = manifest_digest(m.as_ref(), tag)?;
            Ok((Image::read(m, tag)?, Some((layout.to_string(), digest))))
        }
        other => {
            let m: Arc<dyn Mirror> = Arc::from(open_location(other, &ctx.mirror_options)?);
            let tag = other.tag().unwrap_or("latest");
            let bytes = m
                .get_manifest(tag)?
                .with_context(|| format!("base image `{tag}` is not in {}", m.location()))?;
            let digest = Digest::of(&bytes);
            if trust.covers_base(other) {
                if !trust.enforced() {
                    bail!(
                        "`trust: {{ bases: }}` covers the base image {other}, but no key is trusted \
                         (set `trust: {{ keys: }}` or STACKCI_TRUST_KEYS)"
                    );
                }
                trust.check(m.as_ref(), &format!("base image {other}"), &bytes)?;
            }
            // By digest: the image used is the one just read (and verified).
            Ok((Image::read(m, &digest.to_string())?, Some((other.to_string(), digest))))
        }
    }
}

fn manifest_digest(mirror: &dyn Mirror, tag: &str) -> Result<Digest> {
    let bytes = mirror
        .get_manifest(tag)?
        .with_context(|| format!("base image `{tag}` is not in {}", mirror.location()))?;
    Ok(Digest::of(&bytes))
}

/// The packages of image `name`: its packages' runtime closures, dependencies first.
fn image_members(ctx: &Context, name: &str) -> Vec<usize> {
    let mut members: Vec<usize> = ctx.stack.images[name]
        .packages
        .iter()
        .flat_map(|&i| ctx.stack.runtime_closure(i))
        .collect();
    members.sort_unstable();
    members.dedup();
    members
}

/// Each member's own layer digest, found by its prefix among the assembled image's layers
/// (before layers are merged for the budget).
fn package_layers(ctx: &Context, members: &[usize], image: &Image) -> BTreeMap<usize, Digest> {
    members
        .iter()
        .filter_map(|&i| {
            let prefix = ctx.stack.prefix(i);
            image
                .layers
                .iter()
                .find(|l| l.prefix.as_ref() == Some(&prefix))
                .map(|l| (i, l.layer.descriptor.digest.clone()))
        })
        .collect()
}

/// What [`attach`] did.
struct Extras {
    signed: bool,
    sbom: serde_json::Value,
    notes: Vec<String>,
}

/// Signs the written image and attaches (and signs) its SBOM in the target; a docker
/// archive cannot hold either, so its SBOM is written beside it as `<FILE>.spdx.json`.
fn attach(ctx: &Context, to: &Location, trust: &Trust, digest: &Digest, doc: &[u8], created: &str) -> Result<Extras> {
    if let Location::DockerArchive { file, .. } = to {
        let path = std::path::PathBuf::from(format!("{}.spdx.json", file.display()));
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let tmp =
            crate::newfile::temp_in(dir, ".tmp-").with_context(|| format!("creating a file in {}", dir.display()))?;
        std::fs::write(tmp.path(), doc).with_context(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        let mut notes = vec![format!("SBOM: {}", path.display())];
        if trust.signer().is_some() {
            notes.push("note: a docker archive cannot carry signatures; push to a registry or layout to sign".into());
        }
        return Ok(Extras {
            signed: false,
            sbom: serde_json::json!({ "file": path.display().to_string(), "digest": Digest::of(doc).to_string() }),
            notes,
        });
    }
    let target = open_location(to, &ctx.mirror_options)?;
    let target = target.as_ref();
    let manifest = referrers::get_manifest_by_digest(target, digest)?.with_context(|| {
        format!(
            "the image manifest {digest} just written is not in {}",
            target.location()
        )
    })?;
    let subject = spec::descriptor_of(MANIFEST_MEDIA_TYPE, &manifest);
    let signed = trust.sign(target, &subject)?.is_some();
    let (sbom_desc, how) = sbom::attach(target, doc, &subject, created)?;
    trust.sign(target, &sbom_desc)?;
    let how = match how {
        Attached::ReferrersApi => "referrers-api",
        Attached::TagSchema => "tag-schema",
    };
    let mut notes = vec![format!(
        "SBOM: {} ({how}{})",
        sbom_desc.digest,
        if how == "tag-schema" {
            format!(", tag {}", referrers::referrers_tag(digest))
        } else {
            String::new()
        }
    )];
    if signed {
        notes.push(format!("signed: {}", crate::trust::sign::signature_tag(digest)));
    }
    Ok(Extras {
        signed,
        sbom: serde_json::json!({ "digest": sbom_desc.digest.to_string(), "attached": how }),
        notes,
    })
}

//! `stackci image NAME --to REF`: assemble an image of the stack's `images:` section, for
//! one platform or, with `--platform A,B`, one image per platform under an image index; sign
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
use crate::platform::Platform;
use crate::spec::{self, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::stack::{self, Stack};
use crate::trust::Trust;

/// One platform's image, with what its SBOM lists.
struct Assembled {
    platform: Platform,
    /// The stack loaded for this platform when it is not the stack's own.
    other_stack: Option<Stack>,
    image: Image,
    base: Option<(String, Digest)>,
    members: Vec<usize>,
    layers: BTreeMap<usize, Digest>,
}

impl Assembled {
    fn stack<'a>(&'a self, ctx: &'a Context) -> &'a Stack {
        self.other_stack.as_ref().unwrap_or(&ctx.stack)
    }
}

/// Assembles the image from the mirror's package layers (verified when keys are trusted),
/// writes it to `--to`, signs it (with `STACKCI_SIGNING_KEY`) and attaches its SBOM.
pub fn run(ctx: &Context, args: &ImageArgs) -> Result<ExitCode> {
    let to = Location::image(&args.to)?;
    let trust = Trust::load(&ctx.stack, true)?;
    let platforms = if ctx.platforms.is_empty() {
        vec![ctx.stack.platform.clone()]
    } else {
        ctx.platforms.clone()
    };
    // Every platform's image is assembled and checked before anything is written.
    let mut images: Vec<Assembled> = Vec::with_capacity(platforms.len());
    for platform in &platforms {
        let other_stack = if *platform == ctx.stack.platform {
            None
        } else {
            Some(stack::load_for(&ctx.stack.path, Some(platform))?)
        };
        let stack = other_stack.as_ref().unwrap_or(&ctx.stack);
        let (image, base) = assemble_for(ctx, stack, args, platform, &trust).with_context(|| {
            if platforms.len() > 1 {
                format!(
                    "image `{}` for {platform} (build its packages with `stackci --platform {platform} run`)",
                    args.name
                )
            } else {
                format!("image `{}`", args.name)
            }
        })?;
        let members = image::members(stack, &stack.images[&args.name]);
        let layers = package_layers(stack, &members, &image);
        let scratch = ctx.state_dir().join("tmp").join("image");
        std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let image = budget::limit_layers(&image, args.layer_budget, &scratch, ctx.max_layer_size)?;
        images.push(Assembled {
            platform: platform.clone(),
            other_stack,
            image,
            base,
            members,
            layers,
        });
    }
    let (written, subjects) = if images.len() == 1 {
        let written = target::write(&images[0].image, &to, &args.name, &ctx.mirror_options);
        let written = written.with_context(|| format!("writing image `{}` to {to}", args.name))?;
        let subjects = vec![written.digest.clone()];
        (written, subjects)
    } else {
        let pairs: Vec<(Platform, Image)> = images.iter().map(|a| (a.platform.clone(), a.image.clone())).collect();
        let written = target::write_index(&pairs, &to, &args.name, &ctx.mirror_options)
            .with_context(|| format!("writing image `{}` to {to}", args.name))?;
        let subjects = written.manifests.clone();
        (written, subjects)
    };
    let created = rfc3339(source_date_epoch()?);
    let mut extras = Vec::with_capacity(images.len());
    for (assembled, digest) in images.iter().zip(&subjects) {
        let doc = sbom::spdx(&SbomInput {
            stack: assembled.stack(ctx),
            image: &args.name,
            members: &assembled.members,
            layers: &assembled.layers,
            base: assembled.base.clone(),
            image_digest: digest,
            created: &created,
        });
        let e = attach(ctx, &to, &trust, MANIFEST_MEDIA_TYPE, digest, &doc, &created).with_context(|| {
            format!(
                "signing image `{}` ({}) and attaching its SBOM in {to}",
                args.name, assembled.platform
            )
        })?;
        extras.push(e);
    }
    let index_signed = if images.len() > 1 {
        sign_index(ctx, &to, &trust, &written.digest)?
    } else {
        extras[0].signed
    };
    let layers: usize = images.iter().map(|a| a.image.layers.len()).sum();
    let vars = crate::ci::env::Vars::from_process();
    if let Some(path) = vars.get(env_vars::GITHUB_OUTPUT).filter(|p| !p.is_empty()) {
        let key = format!("image-digest-{}", args.name);
        let digest = written.digest.to_string();
        crate::ci::output::append_github_output(
            std::path::Path::new(path),
            &[(key, digest.clone()), ("image-digest".into(), digest)],
        )?;
    }
    let names: Vec<String> = platforms.iter().map(Platform::to_string).collect();
    if ctx.json {
        let sbom = if extras.len() == 1 {
            extras[0].sbom.clone()
        } else {
            serde_json::Value::Array(extras.iter().map(|e| e.sbom.clone()).collect())
        };
        let doc = serde_json::json!({
            "image": args.name, "target": to.to_string(), "digest": written.digest.to_string(),
            "platforms": names,
            "layers": layers, "copied": written.copied, "mounted": written.mounted, "present": written.present,
            "signed": index_signed, "sbom": sbom,
        });
        println!("{doc}");
    } else {
        println!("{}", written.digest);
    }
    eprintln!(
        "image `{}` ({}) -> {to}: {layers} layers ({} copied, {} mounted, {} already there)",
        args.name,
        names.join(", "),
        written.copied,
        written.mounted,
        written.present
    );
    for line in extras.iter().flat_map(|e| &e.notes) {
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The image for one platform: its base (the manifest for `platform` when the base is a
/// multi-platform index; verified when `trust: { bases: }` covers it), the closure of
/// `stack`'s packages for that platform, their layers checked. Returns the image and its
/// base's reference and manifest digest (for the SBOM; `None` for `scratch`).
fn assemble_for(
    ctx: &Context,
    stack: &Stack,
    args: &ImageArgs,
    platform: &Platform,
    trust: &Trust,
) -> Result<(Image, Option<(String, Digest)>)> {
    let spec = image::spec(stack, &args.name)?;
    let base_ref = Location::image(args.base.as_deref().unwrap_or(&spec.base))
        .with_context(|| format!("base of image `{}`", args.name))?;
    let (base, base_id) = read_base(ctx, stack, &base_ref, platform, trust)?;
    let image = image::assemble(
        stack,
        &args.name,
        base,
        ctx.shared_mirror(),
        source_date_epoch()?,
        trust,
    )?;
    let cache = verify::VerifiedCache::new(&ctx.state_dir());
    verify::verify_package_layers(&image, &cache, ctx.max_layer_size)
        .with_context(|| format!("checking the package layers of image `{}`", args.name))?;
    Ok((image, base_id))
}

/// Reads the base image for `platform`; a registry base that `trust: { bases: }` covers
/// must carry a valid signature, and is then read by the digest that was verified.
fn read_base(
    ctx: &Context,
    stack: &Stack,
    base_ref: &Location,
    platform: &Platform,
    trust: &Trust,
) -> Result<(Image, Option<(String, Digest)>)> {
    match base_ref {
        Location::Scratch => Ok((Image::scratch(platform), None)),
        Location::DockerArchive { .. } => bail!("a docker archive cannot be a base image; use oci-layout: or oci://"),
        Location::Layout { dir, tag } => {
            // A relative layout directory is relative to the stack's directory.
            let layout = Location::Layout {
                dir: stack.dir.join(dir),
                tag: tag.clone(),
            };
            let m: Arc<dyn Mirror> = Arc::from(open_location(&layout, &ctx.mirror_options)?);
            let tag = tag.as_deref().unwrap_or("latest");
            let digest = manifest_digest(m.as_ref(), tag)?;
            Ok((Image::read(m, tag, platform)?, Some((layout.to_string(), digest))))
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
            Ok((
                Image::read(m, &digest.to_string(), platform)?,
                Some((other.to_string(), digest)),
            ))
        }
    }
}

fn manifest_digest(mirror: &dyn Mirror, tag: &str) -> Result<Digest> {
    let bytes = mirror
        .get_manifest(tag)?
        .with_context(|| format!("base image `{tag}` is not in {}", mirror.location()))?;
    Ok(Digest::of(&bytes))
}

/// Each member's own layer digest, found by its prefix among the assembled image's layers
/// (before layers are merged for the budget).
fn package_layers(stack: &Stack, members: &[usize], image: &Image) -> BTreeMap<usize, Digest> {
    members
        .iter()
        .filter_map(|&i| {
            let prefix = stack.prefix(i);
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

/// Signs the multi-platform index written at `digest` (each platform's manifest is signed
/// by [`attach`]); returns whether it was signed.
fn sign_index(ctx: &Context, to: &Location, trust: &Trust, digest: &Digest) -> Result<bool> {
    let target = open_location(to, &ctx.mirror_options)?;
    let index = target
        .get_manifest(&digest.to_string())?
        .with_context(|| format!("the image index {digest} just written is not in {}", target.location()))?;
    let subject = spec::descriptor_of(INDEX_MEDIA_TYPE, &index);
    Ok(trust.sign(target.as_ref(), &subject)?.is_some())
}

/// Signs the written manifest and attaches (and signs) its SBOM in the target; a docker
/// archive cannot hold either, so its SBOM is written beside it as `<FILE>.spdx.json`.
fn attach(
    ctx: &Context,
    to: &Location,
    trust: &Trust,
    media_type: &str,
    digest: &Digest,
    doc: &[u8],
    created: &str,
) -> Result<Extras> {
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
    let manifest = target.get_manifest(&digest.to_string())?.with_context(|| {
        format!(
            "the image manifest {digest} just written is not in {}",
            target.location()
        )
    })?;
    let subject = spec::descriptor_of(media_type, &manifest);
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

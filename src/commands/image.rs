//! `stackci image NAME --to REF`: assemble an image of the stack's `images:` section, for
//! one platform or, with `--platform A,B`, one image per platform under an image index.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};

use super::{Context, source_date_epoch};
use crate::cli::ImageArgs;
use crate::env_vars;
use crate::image::{self, Image, budget, target, verify};
use crate::mirror::location::Location;
use crate::mirror::open::open_location;
use crate::platform::Platform;
use crate::stack::{self, Stack};

/// Assembles the image from the mirror's package layers and writes it to `--to`.
pub fn run(ctx: &Context, args: &ImageArgs) -> Result<ExitCode> {
    let to = Location::image(&args.to)?;
    let platforms = if ctx.platforms.is_empty() {
        vec![ctx.stack.platform.clone()]
    } else {
        ctx.platforms.clone()
    };
    // Every platform's image is assembled and checked before anything is written.
    let mut images: Vec<(Platform, Image)> = Vec::with_capacity(platforms.len());
    for platform in &platforms {
        let loaded;
        let stack: &Stack = if *platform == ctx.stack.platform {
            &ctx.stack
        } else {
            loaded = stack::load_for(&ctx.stack.path, Some(platform))?;
            &loaded
        };
        let image = assemble_for(ctx, stack, args, platform).with_context(|| {
            if platforms.len() > 1 {
                format!(
                    "image `{}` for {platform} (build its packages with `stackci --platform {platform} run`)",
                    args.name
                )
            } else {
                format!("image `{}`", args.name)
            }
        })?;
        images.push((platform.clone(), image));
    }
    let written = if images.len() == 1 {
        target::write(&images[0].1, &to, &args.name, &ctx.mirror_options)
    } else {
        target::write_index(&images, &to, &args.name, &ctx.mirror_options)
    }
    .with_context(|| format!("writing image `{}` to {to}", args.name))?;
    let layers: usize = images.iter().map(|(_, i)| i.layers.len()).sum();
    let vars = crate::ci::env::Vars::from_process();
    if let Some(path) = vars.get(env_vars::GITHUB_OUTPUT).filter(|p| !p.is_empty()) {
        let key = format!("image-digest-{}", args.name);
        let digest = written.digest.to_string();
        crate::ci::output::append_github_output(
            std::path::Path::new(path),
            &[(key, digest.clone()), ("image-digest".into(), digest)],
        )?;
    }
    if ctx.json {
        let names: Vec<String> = platforms.iter().map(Platform::to_string).collect();
        let doc = serde_json::json!({
            "image": args.name, "target": to.to_string(), "digest": written.digest.to_string(),
            "platforms": names,
            "layers": layers, "copied": written.copied, "mounted": written.mounted, "present": written.present,
        });
        println!("{doc}");
    } else {
        println!("{}", written.digest);
    }
    let shown: Vec<String> = platforms.iter().map(Platform::to_string).collect();
    eprintln!(
        "image `{}` ({}) -> {to}: {layers} layers ({} copied, {} mounted, {} already there)",
        args.name,
        shown.join(", "),
        written.copied,
        written.mounted,
        written.present
    );
    Ok(ExitCode::SUCCESS)
}

/// The image for one platform: its base (the manifest for `platform` when the base is a
/// multi-platform index), the closure of `stack`'s packages for that platform, checked and
/// within the layer budget.
fn assemble_for(ctx: &Context, stack: &Stack, args: &ImageArgs, platform: &Platform) -> Result<Image> {
    let spec = stack.images.get(&args.name).with_context(|| {
        let known: Vec<&str> = stack.images.keys().map(String::as_str).collect();
        format!(
            "no image `{}` in {} (images: {})",
            args.name,
            stack.path.display(),
            known.join(", ")
        )
    })?;
    let base_ref = Location::image(args.base.as_deref().unwrap_or(&spec.base))
        .with_context(|| format!("base of image `{}`", args.name))?;
    let base = match &base_ref {
        Location::Scratch => Image::scratch(platform),
        Location::DockerArchive { .. } => bail!("a docker archive cannot be a base image; use oci-layout: or oci://"),
        Location::Layout { dir, tag } => {
            // A relative layout directory is relative to the stack's directory.
            let layout = Location::Layout {
                dir: stack.dir.join(dir),
                tag: tag.clone(),
            };
            let m = open_location(&layout, &ctx.mirror_options)?;
            Image::read(Arc::from(m), tag.as_deref().unwrap_or("latest"), platform)?
        }
        other => {
            let m = open_location(other, &ctx.mirror_options)?;
            Image::read(Arc::from(m), other.tag().unwrap_or("latest"), platform)?
        }
    };
    let scratch = ctx.state_dir().join("tmp").join("image");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let image = image::assemble(stack, &args.name, base, ctx.shared_mirror(), source_date_epoch()?)?;
    let cache = verify::VerifiedCache::new(&ctx.state_dir());
    verify::verify_package_layers(&image, &cache, ctx.max_layer_size)
        .with_context(|| format!("checking the package layers of image `{}`", args.name))?;
    budget::limit_layers(&image, args.layer_budget, &scratch, ctx.max_layer_size)
}

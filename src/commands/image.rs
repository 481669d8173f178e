//! `stackci image NAME --to REF`: assemble an image of the stack's `images:` section.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};

use super::{Context, source_date_epoch};
use crate::cli::ImageArgs;
use crate::env_vars;
use crate::image::{self, Image, budget, target, verify};
use crate::mirror::location::Location;
use crate::mirror::open::open_location;

/// Assembles the image from the mirror's package layers and writes it to `--to`.
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
    let base_ref = Location::image(args.base.as_deref().unwrap_or(&spec.base))
        .with_context(|| format!("base of image `{}`", args.name))?;
    let base = match &base_ref {
        Location::Scratch => Image::scratch(),
        Location::DockerArchive { .. } => bail!("a docker archive cannot be a base image; use oci-layout: or oci://"),
        Location::Layout { dir, tag } => {
            // A relative layout directory is relative to the stack's directory.
            let layout = Location::Layout {
                dir: ctx.stack.dir.join(dir),
                tag: tag.clone(),
            };
            let m = open_location(&layout, &ctx.mirror_options)?;
            Image::read(Arc::from(m), tag.as_deref().unwrap_or("latest"))?
        }
        other => {
            let m = open_location(other, &ctx.mirror_options)?;
            Image::read(Arc::from(m), other.tag().unwrap_or("latest"))?
        }
    };
    let to = Location::image(&args.to)?;
    let scratch = ctx.state_dir().join("tmp").join("image");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mirror = ctx.shared_mirror();
    let image = image::assemble(&ctx.stack, &args.name, base, mirror, source_date_epoch()?)?;
    let cache = verify::VerifiedCache::new(&ctx.state_dir());
    verify::verify_package_layers(&image, &cache, ctx.max_layer_size)
        .with_context(|| format!("checking the package layers of image `{}`", args.name))?;
    let image = budget::limit_layers(&image, args.layer_budget, &scratch, ctx.max_layer_size)?;
    let written = target::write(&image, &to, &args.name, &ctx.mirror_options)
        .with_context(|| format!("writing image `{}` to {to}", args.name))?;
    let vars = crate::ci::env::Vars::from_process();
    if let Some(path) = vars.get(env_vars::GITHUB_OUTPUT).filter(|p| !p.is_empty()) {
        let key = format!("image-digest-{}", args.name);
        crate::ci::output::append_github_output(std::path::Path::new(path), &[(key, written.digest.to_string())])?;
    }
    if ctx.json {
        let doc = serde_json::json!({
            "image": args.name, "target": to.to_string(), "digest": written.digest.to_string(),
            "layers": image.layers.len(), "copied": written.copied, "mounted": written.mounted, "present": written.present,
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
    Ok(ExitCode::SUCCESS)
}

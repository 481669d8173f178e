//! `stackci install PKG... --root DIR`: unpack packages and their runtime closure.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use super::Context;
use crate::builder::receipts::Receipts;
use crate::cancel;
use crate::layer::stream::Interrupted;
use crate::trust::Trust;

/// Fetches, verifies and unpacks each package's runtime closure under `--root`, each layer
/// confined to its package's prefix. Ctrl-C stops at once and leaves no staging directory;
/// the exit code is then 130.
pub fn run(ctx: &Context, args: &crate::cli::InstallArgs) -> Result<ExitCode> {
    cancel::install_handler();
    match install(ctx, args) {
        Err(e) if e.chain().any(|c| c.is::<Interrupted>()) => {
            eprintln!("install interrupted: {e:#}");
            Ok(ExitCode::from(130))
        }
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

fn install(ctx: &Context, args: &crate::cli::InstallArgs) -> Result<()> {
    let targets = ctx.packages(&args.packages)?;
    let trust = Trust::load(&ctx.stack, false)?;
    std::fs::create_dir_all(&args.root).with_context(|| format!("creating {}", args.root.display()))?;
    let root = args
        .root
        .canonicalize()
        .with_context(|| format!("resolving {}", args.root.display()))?;
    let receipts = Receipts::new(&root, &ctx.stack.store);
    receipts.sweep_staging()?;
    let reporter = crate::report::Reporter::new(&ctx.stack, ctx.mode);
    for i in targets {
        let tag = ctx.stack.packages[i].tag();
        // Verified (when keys are trusted) before any layer is read: the package's signed
        // manifest pins every layer of its runtime closure.
        let image = trust.read_package(ctx.mirror.as_ref(), &tag)?.with_context(|| {
            format!(
                "`{tag}` is not in {}; run `stackci run {}` first",
                ctx.mirror.location(),
                ctx.stack.packages[i].name
            )
        })?;
        let closure = ctx.stack.runtime_closure(i);
        let layers = image.layers()?;
        if layers.len() != closure.len() {
            bail!(
                "`{tag}` in {} has {} layers, but its runtime closure in the stack has {} packages",
                ctx.mirror.location(),
                layers.len(),
                closure.len()
            );
        }
        for (layer, &d) in layers.iter().zip(&closure) {
            let prefix = ctx.stack.prefix(d);
            if receipts.ensure(ctx.mirror.as_ref(), layer, &prefix, ctx.max_layer_size)? {
                reporter.line(&format!(
                    "unpacked {} ({})",
                    ctx.stack.packages[d].tag(),
                    layer.descriptor.digest
                ));
            }
        }
        reporter.line(&format!("installed {tag} under {}", root.display()));
    }
    Ok(())
}

//! One package build, as a CI job does it: dependencies from the mirror, recipe, pack, push.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::pack::{self, PackOptions};
use super::receipts::Receipts;
use super::{recipe, source};
use crate::mirror::Mirror;
use crate::mirror::package::{Layer, push_package, read_package};
use crate::stack::Stack;

/// Settings shared by every build of a run.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// Parallelism inside one recipe (`$JOBS`).
    pub jobs: usize,
    /// `SOURCE_DATE_EPOCH` for recipes, tar entries and image configs.
    pub source_date_epoch: u64,
    /// Directory for build trees, logs, downloads and blob caches (`<stack dir>/.stackci`).
    pub state: PathBuf,
    /// Most bytes a dependency's layer may expand to (`--max-layer-size`).
    pub max_layer_size: u64,
}

impl BuildSettings {
    /// Where package `tag`'s build log goes.
    pub fn log_path(&self, tag: &str) -> PathBuf {
        self.state.join("logs").join(format!("{tag}.log"))
    }
}

/// Unpacks into the store every package needed to build `i` that is not there yet, each
/// layer confined to its package's prefix.
pub fn install_build_deps(stack: &Stack, i: usize, mirror: &dyn Mirror, settings: &BuildSettings) -> Result<()> {
    let receipts = Receipts::new(Path::new("/"), &stack.store);
    receipts.sweep_staging()?;
    for d in stack.build_closure(i) {
        let tag = stack.packages[d].tag();
        let image = read_package(mirror, &tag)?
            .with_context(|| format!("dependency `{tag}` is not in {}", mirror.location()))?;
        receipts.ensure(mirror, &image.own_layer()?, &stack.prefix(d), settings.max_layer_size)?;
    }
    Ok(())
}

/// Builds package `i` and pushes it: fresh build directory, recipe, deterministic pack,
/// push (blobs, config, manifest, then the tag). `on_line` receives the recipe output.
pub fn build(
    stack: &Stack,
    i: usize,
    mirror: &dyn Mirror,
    settings: &BuildSettings,
    on_line: &mut dyn FnMut(&str),
) -> Result<()> {
    let pkg = &stack.packages[i];
    let tag = pkg.tag();
    install_build_deps(stack, i, mirror, settings)?;

    let build_dir = settings.state.join("build").join(&tag);
    let _ = fs::remove_dir_all(&build_dir);
    let work = build_dir.join("src");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    if let Some(src) = &pkg.source {
        source::prepare(src, &work, &settings.state.join("cache").join("sources"))
            .with_context(|| format!("preparing the source of `{}`", pkg.name))?;
    }

    let receipts = Receipts::new(Path::new("/"), &stack.store);
    let prefix = stack.prefix(i);
    receipts.clear(&prefix)?;
    let rooted = receipts.rooted(&prefix);
    fs::create_dir_all(&rooted).with_context(|| format!("creating {}", rooted.display()))?;
    // The prefix's mode is part of the layer: don't let the caller's umask decide it.
    fs::set_permissions(&rooted, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("setting the mode of {}", rooted.display()))?;
    let log = settings.log_path(&tag);
    fs::create_dir_all(log.parent().unwrap_or(Path::new(".")))?;
    recipe::run(
        stack,
        i,
        &work,
        &log,
        settings.jobs,
        settings.source_date_epoch,
        on_line,
    )?;

    let tmp_dir = settings.state.join("tmp");
    fs::create_dir_all(&tmp_dir).with_context(|| format!("creating {}", tmp_dir.display()))?;
    let tarball = tmp_dir.join(format!("{tag}.tar.gz"));
    let opts = PackOptions {
        source_date_epoch: settings.source_date_epoch,
        threads: 0,
        level: pack::DEFAULT_LEVEL,
    };
    let packed =
        pack::pack_prefix(&prefix, &tarball, &opts).with_context(|| format!("packing {}", prefix.display()))?;
    let layer = Layer::new(packed.digest, packed.size, packed.diff_id);
    let pushed = push_package(mirror, stack, i, &layer, &tarball, settings.source_date_epoch, &tmp_dir);
    let _ = fs::remove_file(&tarball);
    pushed?;
    receipts.record(&layer, &prefix)?;
    let _ = fs::remove_dir_all(&build_dir);
    Ok(())
}

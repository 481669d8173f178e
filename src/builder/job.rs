//! One package build, as a CI job does it: dependencies from the mirror, recipe, pack, push.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::receipts::Receipts;
use super::scratch::Scratch;
use super::spack::{self, SpackBuild};
use super::{recipe, source};
use crate::layer::pack::{self, PackOptions};
use crate::lockfile::Lock;
use crate::mirror::Mirror;
use crate::package::push_package;
use crate::stack::{Recipe, Stack};
use crate::trust::Trust;

/// Settings shared by every build of a run.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// Parallelism inside one recipe (`$JOBS`).
    pub jobs: usize,
    /// `SOURCE_DATE_EPOCH` for recipes, tar entries and image configs.
    pub source_date_epoch: u64,
    /// Directory for build trees, logs, downloads and caches (`<stack dir>/.stackci`).
    pub state: PathBuf,
    /// Most bytes a dependency's layer may expand to (`--max-layer-size`).
    pub max_layer_size: u64,
    /// Build even when the mirror already has the package (`build --force`).
    pub force: bool,
    /// Trusted keys (dependencies are verified before they are unpacked) and the signing key.
    pub trust: Arc<Trust>,
    /// This process's scratch directory under `<state>/build/`, created on first use.
    scratch: Arc<Mutex<Option<Scratch>>>,
}

/// What [`build`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Built and pushed.
    Built,
    /// Found in the mirror once the package's lock was held (another run built it).
    Cached,
}

impl BuildSettings {
    /// Settings for builds with `jobs` (`$JOBS`), `SOURCE_DATE_EPOCH` and state directory.
    pub fn new(jobs: usize, source_date_epoch: u64, state: PathBuf) -> BuildSettings {
        BuildSettings {
            jobs,
            source_date_epoch,
            state,
            max_layer_size: crate::layer::stream::DEFAULT_MAX_LAYER_SIZE,
            force: false,
            trust: Arc::new(Trust::none()),
            scratch: Arc::default(),
        }
    }

    /// This process's scratch directory (build trees, tarballs), removed when the last
    /// clone of these settings is dropped.
    fn scratch(&self) -> Result<PathBuf> {
        let mut slot = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = &*slot {
            return Ok(s.path().to_path_buf());
        }
        let s = Scratch::create(&self.state)?;
        let path = s.path().to_path_buf();
        *slot = Some(s);
        Ok(path)
    }

    /// Where package `tag`'s build log goes.
    pub fn log_path(&self, tag: &str) -> PathBuf {
        self.state.join("logs").join(format!("{tag}.log"))
    }
}

/// The exclusive lock on package `i`'s prefix (`<store>/.stackci/locks/<tag>.lock`), held
/// while it is built, packed and pushed, and while it is unpacked as a dependency.
pub fn prefix_lock(stack: &Stack, i: usize) -> Result<Lock> {
    let tag = stack.packages[i].tag();
    let path = stack.store.join(".stackci").join("locks").join(format!("{tag}.lock"));
    Lock::acquire(&path, &stack.prefix(i).display().to_string())
}

/// Unpacks into the store every package needed to build `i` that is not there yet, each
/// layer confined to its package's prefix; says for each where it came from (`on_line`).
pub fn install_build_deps(
    stack: &Stack,
    i: usize,
    mirror: &dyn Mirror,
    settings: &BuildSettings,
    on_line: &mut dyn FnMut(&str),
) -> Result<()> {
    let receipts = Receipts::new(Path::new("/"), &stack.store);
    receipts.sweep_staging()?;
    for d in stack.build_closure(i) {
        let tag = stack.packages[d].tag();
        let image = settings
            .trust
            .read_package(mirror, &tag)?
            .with_context(|| format!("dependency `{tag}` is not in {}", mirror.location()))?;
        let _lock = prefix_lock(stack, d)?;
        let layer = image.own_layer()?;
        let unpacked = receipts.ensure(mirror, &layer, &stack.prefix(d), settings.max_layer_size)?;
        let how = if unpacked {
            "unpacked from"
        } else {
            "already in the store, from"
        };
        on_line(&format!(
            "stackci: dependency {tag}: {how} {} ({})",
            mirror.location(),
            layer.descriptor.digest
        ));
    }
    Ok(())
}

/// Builds package `i` and pushes it, holding its prefix lock: re-checks the mirror (another
/// run may have built it meanwhile; not with `force`), then fresh build directory, recipe,
/// deterministic pack, push (blobs, config, manifest, then the tag). `on_line` receives the
/// recipe output.
pub fn build(
    stack: &Stack,
    i: usize,
    mirror: &dyn Mirror,
    settings: &BuildSettings,
    on_line: &mut dyn FnMut(&str),
) -> Result<Done> {
    let pkg = &stack.packages[i];
    let tag = pkg.tag();
    let _lock = prefix_lock(stack, i)?;
    if !settings.force && mirror.get_manifest(&tag)?.is_some() {
        return Ok(Done::Cached);
    }
    let mut deps_log = Vec::new();
    install_build_deps(stack, i, mirror, settings, &mut |line| {
        deps_log.push(line.to_string());
        on_line(line)
    })?;

    let scratch = settings.scratch()?;
    let build_dir = tempfile::Builder::new()
        .prefix(&format!("{tag}."))
        .tempdir_in(&scratch)
        .with_context(|| format!("creating a build directory in {}", scratch.display()))?;
    let work = build_dir.path().join("src");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    if let Some(src) = &pkg.source {
        source::prepare(src, &work, &settings.state.join("cache").join("sources"))
            .with_context(|| format!("preparing the source of `{}`", pkg.name))?;
    }

    let receipts = Receipts::new(Path::new("/"), &stack.store);
    let prefix = stack.prefix(i);
    receipts.clear(&prefix)?;
    let log = settings.log_path(&tag);
    fs::create_dir_all(log.parent().unwrap_or(Path::new(".")))?;
    if pkg.recipe == Recipe::Spack {
        // Spack creates the prefix itself (and refuses one that exists).
        let build = SpackBuild {
            build_dir: build_dir.path(),
            state: &settings.state,
            log: &log,
            jobs: settings.jobs,
            source_date_epoch: settings.source_date_epoch,
        };
        spack::install(stack, i, &build, &deps_log, on_line)?;
    } else {
        let rooted = receipts.rooted(&prefix);
        fs::create_dir_all(&rooted).with_context(|| format!("creating {}", rooted.display()))?;
        // The prefix's mode is part of the layer: don't let the caller's umask decide it.
        fs::set_permissions(&rooted, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of {}", rooted.display()))?;
        recipe::run(
            stack,
            i,
            &work,
            &log,
            settings.jobs,
            settings.source_date_epoch,
            on_line,
        )?;
    }

    let opts = PackOptions {
        source_date_epoch: settings.source_date_epoch,
        threads: 0,
        level: pack::DEFAULT_LEVEL,
    };
    // Packed into the state directory: a file mirror on the same file system (the default
    // `<stack dir>/.stackci/mirror`) takes the layer by rename.
    let packed = pack::pack_into(&prefix, build_dir.path(), &opts)?;
    push_package(
        mirror,
        stack,
        i,
        &packed.layer,
        &packed,
        settings.source_date_epoch,
        &settings.trust,
    )?;
    receipts.record(&packed.layer, &prefix)?;
    Ok(Done::Built)
}

//! `spack:` in `stack.yaml`: the packages are the concrete specs of a Spack environment's
//! `spack.lock`, and every other section (`store`, `mirror`, `env`, `timeout`, `images`,
//! `status`, `ci`) applies as for a stack of recipes. Lockfile errors name the lockfile;
//! everything else names `stack.yaml`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Common, Converter, RawStack, normalize, pos, valid_env_name};
use crate::stack::error::{ErrorKind, StackError};
use crate::stack::spack_env::SpackSettings;
use crate::stack::{Stack, spack};

/// The `spack:` section as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpack {
    env: Option<Spanned<String>>,
    root: Option<Spanned<String>>,
    #[serde(default)]
    pass_env: Vec<Spanned<String>>,
    #[serde(default)]
    install_flags: Vec<String>,
    git: Option<Spanned<String>>,
    #[serde(rename = "ref")]
    git_ref: Option<Spanned<String>>,
}

impl Converter<'_> {
    /// Converts a `stack.yaml` with a `spack:` section.
    pub(super) fn convert_spack(&self, mut raw: RawStack) -> Result<Stack, StackError> {
        let Some(section) = raw.spack.take() else {
            return Err(self.err(ErrorKind::Invalid, None, "no `spack:` section"));
        };
        let at = pos(&section);
        let s = section.value;
        if let Some(packages) = &raw.packages {
            let first = packages.0.first().and_then(|(k, _)| pos(k));
            let msg =
                "`packages:` and `spack:` exclude each other: a Spack stack's packages are the specs of its spack.lock";
            return Err(self.err(ErrorKind::Invalid, first.or(at), msg));
        }
        let env = s.env.ok_or_else(|| {
            self.err(
                ErrorKind::Invalid,
                at,
                "`spack:` needs `env:`, the directory holding the environment's spack.yaml and spack.lock",
            )
        })?;
        let dir = normalize(&self.dir.join(&env.value));
        let shown = || normalize(&self.file.parent().unwrap_or(Path::new("")).join(&env.value));
        if !dir.is_dir() {
            let msg = format!(
                "spack env `{}` is not a directory (looked for `{}`)",
                env.value,
                shown().display()
            );
            return Err(self.err(ErrorKind::Invalid, pos(&env), msg));
        }
        let lock = dir.join("spack.lock");
        if !lock.is_file() {
            let msg = format!(
                "spack env `{}` has no spack.lock (looked for `{}`); concretize it first: spack -e {} concretize",
                env.value,
                shown().join("spack.lock").display(),
                env.value
            );
            return Err(self.err(ErrorKind::NotFound, pos(&env), msg));
        }
        // Lockfile errors name the lockfile as the user would find it from here.
        let mut stack = spack::load(&shown().join("spack.lock"))?;

        let Common {
            store,
            platform,
            env: stack_env,
            timeout,
            mirror,
            upstreams,
        } = self.common(&raw)?;
        if let Some(name) = &raw.name {
            self.check_stack_name(name)?;
            stack.name = name.value.clone();
        }
        let settings = self.spack_settings(s.root, s.pass_env, s.install_flags, s.git, s.git_ref)?;
        let images = self.spack_images(&mut raw, &stack)?;

        if let Some(t) = timeout {
            for p in stack.packages.iter_mut().filter(|p| !p.is_external()) {
                p.timeout = Some(t);
            }
        }
        let mut spack_env = stack.spack.take().ok_or_else(|| {
            self.err(
                ErrorKind::Invalid,
                pos(&env),
                "the lockfile did not load as a Spack environment",
            )
        })?;
        spack_env.dir = dir;
        spack_env.lock = lock;
        spack_env.settings = settings;
        Ok(Stack {
            path: self.file.to_path_buf(),
            dir: self.dir.clone(),
            store,
            platform,
            env: stack_env,
            mirror,
            upstreams,
            images,
            status: raw.status,
            ci: raw.ci,
            trust: raw.trust,
            spack: Some(spack_env),
            ..stack
        })
    }

    /// Checks the `spack:` settings besides `env:`.
    fn spack_settings(
        &self,
        root: Option<Spanned<String>>,
        pass_env: Vec<Spanned<String>>,
        install_flags: Vec<String>,
        git: Option<Spanned<String>>,
        git_ref: Option<Spanned<String>>,
    ) -> Result<SpackSettings, StackError> {
        let root: Option<PathBuf> = match root {
            Some(r) if r.value.trim().is_empty() => {
                return Err(self.err(ErrorKind::Invalid, pos(&r), "`spack: root:` is empty"));
            }
            r => r.map(|r| normalize(&self.dir.join(&r.value))),
        };
        let mut names = Vec::with_capacity(pass_env.len());
        for n in pass_env {
            if !valid_env_name(&n.value) {
                let msg = format!(
                    "`spack: pass_env:` names `{}`, which is not an environment variable name",
                    n.value
                );
                return Err(self.err(ErrorKind::Invalid, pos(&n), msg));
            }
            names.push(n.value);
        }
        if let Some(g) = &git
            && (g.value.trim().is_empty() || crate::net::redact::userinfo(&g.value).is_some())
        {
            let msg = "`spack: git:` must be a repository URL without credentials (CI jobs print it)";
            return Err(self.err(ErrorKind::Invalid, pos(g), msg));
        }
        if let Some(r) = &git_ref
            && (r.value.is_empty() || r.value.contains(char::is_whitespace) || r.value.starts_with('-'))
        {
            let msg = format!("`spack: ref: {}` is not a git commit, tag or branch", r.value);
            return Err(self.err(ErrorKind::Invalid, pos(r), msg));
        }
        Ok(SpackSettings {
            root,
            pass_env: names,
            install_flags,
            git: git.map(|g| g.value),
            git_ref: git_ref.map(|r| r.value),
        })
    }

    /// The `images:` section, naming specs of the lockfile by name (when only one spec has
    /// it), tag (`name-version-hash`) or DAG hash.
    fn spack_images(
        &self,
        raw: &mut RawStack,
        stack: &Stack,
    ) -> Result<BTreeMap<String, crate::stack::ImageSpec>, StackError> {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for p in &stack.packages {
            *count.entry(p.name.as_str()).or_default() += 1;
        }
        let tags: Vec<String> = stack.packages.iter().map(|p| p.tag()).collect();
        let mut names: HashMap<&str, usize> = HashMap::with_capacity(3 * stack.packages.len());
        for (i, p) in stack.packages.iter().enumerate() {
            if count[p.name.as_str()] == 1 {
                names.insert(&p.name, i);
            }
            names.insert(&p.hash, i);
            names.insert(&tags[i], i);
        }
        let mut images = BTreeMap::new();
        for (key, image) in std::mem::take(&mut raw.images.0) {
            for p in &image.packages {
                if count.get(p.value.as_str()).is_some_and(|&n| n > 1) {
                    let msg = format!(
                        "image `{}`: {} specs of the lockfile are named `{}`: name one by its tag (`name-version-hash`) or hash",
                        key.value,
                        count[p.value.as_str()],
                        p.value
                    );
                    return Err(self.err(ErrorKind::Invalid, pos(p), msg));
                }
                if let Some(&i) = names.get(p.value.as_str())
                    && stack.packages[i].is_external()
                {
                    let msg = format!(
                        "image `{}`: `{}` is external (provided by the system): the image's base must hold it",
                        key.value, p.value
                    );
                    return Err(self.err(ErrorKind::Invalid, pos(p), msg));
                }
            }
            let spec = self.image(&key, image, &names)?;
            images.insert(key.value, spec);
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests;

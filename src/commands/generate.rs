//! `stackci generate gitlab|github`: CI files rendered from the stack and its plan.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Context;
use crate::cli::Generate;
use crate::generate::check::{self, CheckError};
use crate::generate::github::{self, GithubOptions};
use crate::generate::gitlab::{self, GitlabOptions};

/// Renders and writes (or checks) the requested CI file(s).
pub fn run(ctx: &Context, which: &Generate) -> Result<ExitCode> {
    let stack_file = stack_file_for_ci(ctx);
    match which {
        Generate::Gitlab(args) => {
            local_mirror_check(ctx, args.allow_local_mirror)?;
            let plan = super::plan::compute(ctx)?;
            let mut settings = ctx.stack.ci.gitlab.clone();
            if let Some(n) = args.max_jobs {
                settings.max_jobs = n;
            }
            let mut opts = GitlabOptions::new(stack_file, settings);
            opts.output = args.output.display().to_string();
            opts.image = args.image.clone().filter(|i| !i.is_empty());
            let files = gitlab::gitlab_pipeline(&plan, &ctx.stack, &opts)?;
            write_all(&files)?;
            let jobs = plan.to_build().count();
            eprintln!(
                "wrote {} ({} package(s) to build, {} file(s))",
                args.output.display(),
                jobs,
                files.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Generate::Github(args) => {
            let mut opts = GithubOptions::new(stack_file, ctx.stack.ci.github.clone());
            opts.output = args.output.display().to_string();
            let rendered = github::github_workflow(&ctx.stack, &opts)?;
            if args.check {
                return match check::check(&args.output, &rendered, &opts.regenerate_command()) {
                    Ok(()) => {
                        eprintln!("{} is up to date", args.output.display());
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e @ CheckError::Stale { .. }) => {
                        eprintln!("error: {e}");
                        Ok(ExitCode::from(1))
                    }
                    Err(e) => Err(e.into()),
                };
            }
            write_all(&[(args.output.display().to_string(), rendered)])?;
            eprintln!("wrote {}", args.output.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// GitLab jobs run on other machines (or in fresh containers), so the default mirror, a
/// directory beside the stack, is not shared between them: a warning on a workstation, an
/// error in CI unless `--allow-local-mirror` says the directory is on shared storage.
fn local_mirror_check(ctx: &Context, allowed: bool) -> Result<()> {
    if !ctx.mirror_is_default || allowed {
        return Ok(());
    }
    let what = format!(
        "the mirror is the default {}, a directory on this machine that the generated jobs do not share; \
         set one every job reaches: `mirror: oci://$CI_REGISTRY_IMAGE/mirror` in the stack (or \
         STACKCI_MIRROR, the component's `mirror` input, --mirror), or s3://BUCKET/PREFIX; \
         --allow-local-mirror if the directory is on storage every runner mounts",
        ctx.mirror.location()
    );
    let vars = crate::ci::env::Vars::from_process();
    if vars.get(crate::env_vars::CI).is_some() || vars.is_true(crate::env_vars::GITLAB_CI) {
        anyhow::bail!("{what}");
    }
    eprintln!("warning: {what}");
    Ok(())
}

/// The stack file as CI jobs see it: relative to the current directory (the project
/// root in CI) when it is below it.
fn stack_file_for_ci(ctx: &Context) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let path = &ctx.stack.path;
    let abs = if path.is_absolute() {
        path.clone()
    } else {
        cwd.join(path)
    };
    abs.strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or(abs)
        .display()
        .to_string()
}

/// Writes every file to a temporary name first, then renames them all, so a failure
/// leaves no file half-written.
fn write_all(files: &[(String, String)]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for (name, text) in files {
        let dest = PathBuf::from(name);
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut tmp =
            crate::newfile::temp_in(dir, ".tmp-").with_context(|| format!("creating a file in {}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).with_context(|| format!("writing {name}"))?;
        staged.push((tmp, dest));
    }
    for (tmp, dest) in staged {
        tmp.persist(&dest)
            .with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok(())
}

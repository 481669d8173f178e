//! `stackci index`: rebuild the mirror's index from its contents.

use std::process::ExitCode;

use anyhow::Result;

use super::Context;

/// Rescans the mirror and rewrites its index; prints the number of tags.
pub fn run(ctx: &Context) -> Result<ExitCode> {
    let count = ctx.mirror.reindex()?;
    if ctx.json {
        println!("{}", serde_json::json!({"mirror": ctx.mirror.location(), "tags": count}));
    } else {
        eprintln!("{count} package tag(s) in {}", ctx.mirror.location());
    }
    Ok(ExitCode::SUCCESS)
}

//! `stackci index`: rebuild the mirror's index from its contents.

use std::process::ExitCode;

use anyhow::Result;

use super::Context;

/// Rescans the mirror, restores the tags its index lost (never moving one it still has) and
/// prints the number of tags the index then holds.
pub fn run(ctx: &Context) -> Result<ExitCode> {
    let count = ctx.mirror.reindex()?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"mirror": ctx.mirror.location(), "tags": count})
        );
    } else {
        eprintln!("{count} tag(s) in the index of {}", ctx.mirror.location());
    }
    Ok(ExitCode::SUCCESS)
}

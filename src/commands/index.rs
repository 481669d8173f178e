//! `stackci index`: rebuild the mirror's index from its contents.

use std::process::ExitCode;

use anyhow::Result;

use crate::mirror::Mirror;

/// Rescans the mirror, restores the tags its index lost (never moving one it still has) and
/// prints the number of tags the index then holds.
pub fn run(mirror: &dyn Mirror, json: bool) -> Result<ExitCode> {
    let count = mirror.reindex()?;
    if json {
        println!("{}", serde_json::json!({"mirror": mirror.location(), "tags": count}));
    } else {
        eprintln!("{count} tag(s) in the index of {}", mirror.location());
    }
    Ok(ExitCode::SUCCESS)
}

//! `generate ... --check`: compare a committed generated file with a fresh rendering.

use std::path::{Path, PathBuf};

/// Why a committed generated file does not match what the generator renders now.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file differs; `diff` is a unified diff from the file to the fresh rendering.
    #[error("{} is out of date with the stack:\n{diff}\nhint: run `{regenerate}` and commit the result", path.display())]
    Stale {
        /// The committed file.
        path: PathBuf,
        /// Unified diff, committed (`a/`) to fresh (`b/`), line endings normalized.
        diff: String,
        /// The command that rewrites the file.
        regenerate: String,
    },
    /// The file could not be read (missing or unreadable).
    #[error("cannot read {}\nhint: run `{regenerate}` to create it", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The command that writes the file.
        regenerate: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Compares the file at `path` with `rendered`, ignoring the difference between `\r\n` and
/// `\n` line endings and a missing final newline. `regenerate` is the command suggested
/// in the error (e.g. `stackci generate github -o .github/workflows/stackci.yml`).
pub fn check(path: &Path, rendered: &str, regenerate: &str) -> Result<(), CheckError> {
    let committed = std::fs::read_to_string(path).map_err(|source| CheckError::Read {
        path: path.to_path_buf(),
        regenerate: regenerate.to_string(),
        source,
    })?;
    let (old, new) = (normalize(&committed), normalize(rendered));
    if old == new {
        return Ok(());
    }
    let shown = path.display().to_string();
    let diff = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{shown} (committed)"), &format!("b/{shown} (generated)"))
        .to_string();
    Err(CheckError::Stale {
        path: path.to_path_buf(),
        diff,
        regenerate: regenerate.to_string(),
    })
}

/// `\r\n` and lone `\r` become `\n`; the text ends with exactly one `\n`.
fn normalize(s: &str) -> String {
    let mut out = s.replace("\r\n", "\n").replace('\r', "\n");
    while out.ends_with('\n') {
        out.pop();
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_with_other_line_endings_is_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.yml");
        std::fs::write(&f, "a: 1\r\nb: 2\r\n\r\n").unwrap();
        check(&f, "a: 1\nb: 2\n", "stackci generate github -o w.yml").unwrap();
        check(&f, "a: 1\nb: 2", "x").unwrap();
    }

    #[test]
    fn stale_file_gives_a_diff_and_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.yml");
        std::fs::write(&f, "a: 1\nb: 2\nc: 3\n").unwrap();
        let err = check(&f, "a: 1\nb: 20\nc: 3\n", "stackci generate github -o w.yml").unwrap_err();
        let CheckError::Stale { diff, .. } = &err else {
            panic!("{err}")
        };
        assert!(diff.contains("-b: 2\n+b: 20\n"), "{diff}");
        assert!(diff.contains("(committed)") && diff.contains("(generated)"), "{diff}");
        let msg = err.to_string();
        assert!(
            msg.contains("is out of date")
                && msg.ends_with("hint: run `stackci generate github -o w.yml` and commit the result"),
            "{msg}"
        );
    }

    #[test]
    fn missing_file_names_the_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("missing.yml");
        let msg = check(&f, "a: 1\n", "stackci generate github -o missing.yml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("missing.yml") && msg.contains("hint: run `stackci generate github -o missing.yml`"),
            "{msg}"
        );
    }
}

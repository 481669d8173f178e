//! [`StackError`]: one error type for everything that can be wrong with a stack file,
//! displayed like a compiler diagnostic (`FILE:LINE:COL: package `P`: MESSAGE`; the CLI
//! puts `error: ` in front).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A 1-based line and column in a stack file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column (in characters), starting at 1.
    pub column: usize,
}

impl Position {
    /// A position from a `serde_saphyr` location; `None` when the location is unknown.
    pub(crate) fn from_yaml(loc: serde_saphyr::Location) -> Option<Position> {
        if loc.line() == 0 {
            return None;
        }
        Some(Position {
            line: loc.line() as usize,
            column: loc.column().max(1) as usize,
        })
    }

    /// The position of byte `offset` in `text`.
    pub(crate) fn of_offset(text: &[u8], offset: usize) -> Position {
        let before = &text[..offset.min(text.len())];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        Position { line, column }
    }
}

/// What kind of problem a [`StackError`] reports, for callers that must tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No stack file was found, or the given one does not exist.
    NotFound,
    /// The file (or a source directory) could not be read.
    Io,
    /// The file is not valid YAML/JSON, or not of the expected shape (unknown key,
    /// wrong type, duplicate key).
    Syntax,
    /// A dependency (or image entry) names a package that does not exist.
    UnknownPackage,
    /// The dependency graph has a cycle.
    Cycle,
    /// A Spack lockfile version this program does not read.
    UnsupportedVersion,
    /// Any other invalid value (missing field, bad name, bad digest, bad path, ...).
    Invalid,
}

/// An error in a stack file, naming the file, the position and the package when known.
///
/// Displays as `stack.yaml:12:5: package `hello`: depends on unknown package `zlb``
/// (without an `error: ` prefix: the CLI adds it, as for every error).
/// The file is shown as given to [`crate::stack::load`]. I/O failures keep the
/// underlying error as [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub struct StackError {
    /// The stack file (as given).
    pub file: PathBuf,
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// The package concerned, when known (Spack: `name/hash`).
    pub package: Option<String>,
    /// The kind of problem.
    pub kind: ErrorKind,
    /// What is wrong, in words.
    pub message: String,
    /// The I/O error behind an [`ErrorKind::Io`] error.
    #[source]
    pub source: Option<io::Error>,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if let Some(package) = &self.package {
            write!(f, ": package `{package}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl StackError {
    /// A new error in `file` with no position or package yet.
    pub(crate) fn new(file: &Path, kind: ErrorKind, message: impl Into<String>) -> StackError {
        StackError {
            file: file.to_path_buf(),
            position: None,
            package: None,
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O failure while doing `what` (e.g. "cannot read the stack file").
    pub(crate) fn io(file: &Path, what: impl Into<String>, source: io::Error) -> StackError {
        StackError {
            source: Some(source),
            ..StackError::new(file, ErrorKind::Io, what)
        }
    }

    /// Sets the position.
    pub(crate) fn at(mut self, position: Option<Position>) -> StackError {
        self.position = position;
        self
    }

    /// Sets the package.
    pub(crate) fn package(mut self, package: impl Into<String>) -> StackError {
        self.package = Some(package.into());
        self
    }
}

/// The closest of `candidates` to `name` (edit distance at most 2), for "did you mean" hints.
pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= 2 && d < name.chars().count())
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_a_compiler() {
        let e = StackError::new(
            Path::new("stack.yaml"),
            ErrorKind::UnknownPackage,
            "depends on unknown package `zlb`",
        )
        .at(Some(Position { line: 12, column: 5 }))
        .package("hello");
        assert_eq!(
            e.to_string(),
            "stack.yaml:12:5: package `hello`: depends on unknown package `zlb`"
        );
        let e = StackError::new(Path::new("dir/spack.lock"), ErrorKind::Syntax, "bad");
        assert_eq!(e.to_string(), "dir/spack.lock: bad");
    }

    #[test]
    fn positions_from_offsets() {
        let text = "ab\ncdé\nf".as_bytes();
        assert_eq!(Position::of_offset(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of_offset(text, 3), Position { line: 2, column: 1 });
        assert_eq!(
            Position::of_offset(text, text.len() - 1),
            Position { line: 3, column: 1 }
        );
        assert_eq!(Position::of_offset(text, 7), Position { line: 2, column: 4 });
    }

    #[test]
    fn suggestions() {
        let names = ["zlib", "hello", "libcrc"];
        assert_eq!(suggest("zlb", names.iter().copied()), Some("zlib"));
        assert_eq!(suggest("libcr", names.iter().copied()), Some("libcrc"));
        assert_eq!(suggest("python", names.iter().copied()), None);
        assert_eq!(suggest("a", ["b"].iter().copied()), None);
    }
}

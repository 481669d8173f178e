//! The result of a run or a one-package build: what happened to every package.
//!
//! The scheduler ([`super::schedule`]) returns a [`RunSummary`]; everything else only reads
//! it, so each rendering is a pure function of the same value: the text summary and
//! `run --json` (in the `run` command), commit statuses ([`crate::ci::status`]), and the
//! job summary, outputs and JUnit report ([`crate::ci::output`]).

use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::stack::Package;

/// Log lines kept in a failed package's [`Outcome::Failed::log_tail`].
const LOG_TAIL_LINES: usize = 40;

/// Most bytes of a log read for [`Outcome::Failed::log_tail`].
const LOG_TAIL_BYTES: u64 = 16 << 10;

/// What happened to every package of a stack in one run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Stack name; commit status contexts are `stackci/<stack>`.
    pub stack: String,
    /// One entry per package the run was about, in dependency order.
    pub packages: Vec<PackageOutcome>,
    /// True when Ctrl-C stopped the run.
    pub interrupted: bool,
}

/// One package's line in a [`RunSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageOutcome {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// Package hash (32 base32 characters).
    pub hash: String,
    /// Package tag (`<name>-<version>-<hash>`), the name of its log and mirror entry.
    pub tag: String,
    /// What happened to it.
    pub outcome: Outcome,
    /// Wall time spent building it (zero for packages that were not built).
    pub duration: Duration,
}

/// What happened to one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Built and pushed in this run.
    Built,
    /// Already in the mirror (or pushed by another run while this one waited for its lock).
    Cached,
    /// Its recipe (or pack, or push) failed.
    Failed {
        /// The error, with its causes, on one line.
        error: String,
        /// The build log.
        log: PathBuf,
        /// The end of the build log followed by the error (see [`log_tail`]): what
        /// reports show as is.
        log_tail: String,
    },
    /// Not attempted, because a dependency failed or the run was interrupted.
    Skipped {
        /// Why, in a few words ("dependency `zlib-1.3-…` failed", "interrupted").
        reason: String,
    },
    /// Provided by the system; never built.
    External,
}

/// How many packages ended in each [`Outcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Built in this run.
    pub built: usize,
    /// Found in the mirror.
    pub cached: usize,
    /// Failed.
    pub failed: usize,
    /// Not attempted.
    pub skipped: usize,
    /// Provided by the system.
    pub external: usize,
}

impl RunSummary {
    /// Counts packages by outcome.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for p in &self.packages {
            match p.outcome {
                Outcome::Built => c.built += 1,
                Outcome::Cached => c.cached += 1,
                Outcome::Failed { .. } => c.failed += 1,
                Outcome::Skipped { .. } => c.skipped += 1,
                Outcome::External => c.external += 1,
            }
        }
        c
    }

    /// True when no package failed (what commit statuses report).
    pub fn succeeded(&self) -> bool {
        self.counts().failed == 0
    }

    /// True when nothing failed, nothing was skipped and the run was not interrupted
    /// (what the exit code reports).
    pub fn complete(&self) -> bool {
        let c = self.counts();
        !self.interrupted && c.failed == 0 && c.skipped == 0
    }

    /// Sum of the packages' durations.
    pub fn total_duration(&self) -> Duration {
        self.packages.iter().map(|p| p.duration).sum()
    }
}

impl PackageOutcome {
    /// `package`'s line: `outcome`, after `duration` spent building it.
    pub fn new(package: &Package, outcome: Outcome, duration: Duration) -> PackageOutcome {
        PackageOutcome {
            name: package.name.clone(),
            version: package.version.clone(),
            hash: package.hash.clone(),
            tag: package.tag(),
            outcome,
            duration,
        }
    }

    /// One line for the log: `built    <tag> (1.2s)`, `FAILED   <tag>: <error>`, ...
    pub fn describe(&self) -> String {
        let tag = &self.tag;
        match &self.outcome {
            Outcome::Built => format!("built    {tag} ({:.1}s)", self.duration.as_secs_f64()),
            Outcome::Cached => format!("cached   {tag}"),
            Outcome::External => format!("external {tag}"),
            Outcome::Failed { error, .. } => format!("FAILED   {tag}: {error}"),
            Outcome::Skipped { reason } => format!("skipped  {tag}: {reason}"),
        }
    }
}

/// "12 built, 40 cached, 1 failed", then ", N skipped" and ", N external" when non-zero.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} built, {} cached, {} failed",
            self.built, self.cached, self.failed
        )?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        if self.external > 0 {
            write!(f, ", {} external", self.external)?;
        }
        Ok(())
    }
}

impl Outcome {
    /// A failure with `error`: the end of the build log at `log` (when it can be read),
    /// then the error, becomes the [`Outcome::Failed::log_tail`].
    pub fn failed(error: String, log: PathBuf) -> Outcome {
        let lines = log_tail(&log, LOG_TAIL_LINES, LOG_TAIL_BYTES).unwrap_or_default();
        let log_tail = format!("{lines}\n{error}").trim_start().to_string();
        Outcome::Failed { error, log, log_tail }
    }

    /// One word for tables and outputs: built, cached, failed, skipped, external.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Built => "built",
            Outcome::Cached => "cached",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::External => "external",
        }
    }
}

/// Reads the end of a log file for [`Outcome::Failed`]: at most `max_lines` lines and at most
/// `max_bytes` bytes, without reading the rest of the file. Invalid UTF-8 is replaced.
pub fn log_tail(path: &Path, max_lines: usize, max_bytes: u64) -> anyhow::Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening log {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading the size of log {}", path.display()))?
        .len();
    let start = len.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))
        .with_context(|| format!("seeking in log {}", path.display()))?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    file.take(max_bytes)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading log {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    // A cut in the middle of a line leaves a partial first line: drop it when there is more.
    let text = if start > 0 {
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    let text = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let keep = lines.len().saturating_sub(max_lines);
    Ok(lines[keep..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, outcome: Outcome) -> PackageOutcome {
        PackageOutcome {
            name: name.into(),
            version: "1".into(),
            hash: "h".into(),
            tag: format!("{name}-1-h"),
            outcome,
            duration: Duration::from_secs(1),
        }
    }

    fn failed(tail: &str) -> Outcome {
        Outcome::Failed {
            error: "e".into(),
            log: PathBuf::from("log"),
            log_tail: tail.into(),
        }
    }

    #[test]
    fn counts_describe_the_run() {
        let s = RunSummary {
            stack: "demo".into(),
            packages: vec![
                pkg("a", Outcome::Built),
                pkg("b", Outcome::Cached),
                pkg("c", Outcome::Cached),
                pkg("d", failed("x")),
            ],
            interrupted: false,
        };
        assert_eq!(s.counts().to_string(), "1 built, 2 cached, 1 failed");
        assert!(!s.succeeded());
        assert!(!s.complete());
        let s2 = RunSummary {
            stack: "demo".into(),
            packages: vec![
                pkg("a", Outcome::External),
                pkg("b", Outcome::Skipped { reason: "r".into() }),
            ],
            interrupted: false,
        };
        assert_eq!(
            s2.counts().to_string(),
            "0 built, 0 cached, 0 failed, 1 skipped, 1 external"
        );
        assert!(s2.succeeded(), "statuses: nothing failed");
        assert!(!s2.complete(), "exit code: something was skipped");
        let interrupted = RunSummary {
            stack: "demo".into(),
            packages: vec![pkg("a", Outcome::Built)],
            interrupted: true,
        };
        assert!(interrupted.succeeded() && !interrupted.complete());
    }

    #[test]
    fn a_line_per_package() {
        assert_eq!(pkg("a", Outcome::Built).describe(), "built    a-1-h (1.0s)");
        assert_eq!(pkg("a", failed("x")).describe(), "FAILED   a-1-h: e");
        let skipped = pkg(
            "a",
            Outcome::Skipped {
                reason: "interrupted".into(),
            },
        );
        assert_eq!(skipped.describe(), "skipped  a-1-h: interrupted");
    }

    #[test]
    fn a_failure_keeps_the_end_of_its_log_then_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        fs::write(&log, "configure\nmake: *** [all] Error 1\n").unwrap();
        let Outcome::Failed { log_tail, .. } = Outcome::failed("recipe exited with 2".into(), log) else {
            unreachable!()
        };
        assert_eq!(log_tail, "configure\nmake: *** [all] Error 1\nrecipe exited with 2");
        let Outcome::Failed { log_tail, .. } = Outcome::failed("no log".into(), dir.path().join("none")) else {
            unreachable!()
        };
        assert_eq!(log_tail, "no log");
    }

    #[test]
    fn log_tail_reads_only_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let body: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        fs::write(&path, body).unwrap();
        assert_eq!(log_tail(&path, 3, 1 << 20).unwrap(), "line 997\nline 998\nline 999");
        // 20 bytes from the end cut "line 997" in half; the partial line is dropped.
        assert_eq!(log_tail(&path, 100, 20).unwrap(), "line 998\nline 999");
        fs::write(&path, "short").unwrap();
        assert_eq!(log_tail(&path, 10, 100).unwrap(), "short");
    }
}

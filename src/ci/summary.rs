//! The neutral result of a run or a build: what commit statuses, job summaries and JUnit
//! reports are made from.
//!
//! The runner fills a [`RunSummary`]; everything in [`crate::ci`] only reads it, so each CI
//! output is a pure function of the same value.

use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

/// What happened to every package of a stack in one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Stack name; commit status contexts are `stackci/<stack>`.
    pub stack: String,
    /// One entry per package, in the order the report should list them (dependency order).
    pub packages: Vec<PackageOutcome>,
}

/// One package's line in a [`RunSummary`].
#[derive(Debug, Clone, Serialize)]
pub struct PackageOutcome {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// Package hash (32 base32 characters).
    pub hash: String,
    /// What happened to it.
    pub outcome: Outcome,
    /// Wall time spent on it (zero for cached and external packages).
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
}

/// What happened to one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Outcome {
    /// Built and pushed in this run.
    Built,
    /// Already in the mirror; nothing to do.
    Cached,
    /// Its recipe (or pack/push) failed; `log_tail` holds the last lines of its log.
    Failed {
        /// The end of the build log (see [`log_tail`]), shown in reports as is.
        log_tail: String,
    },
    /// Not attempted, e.g. because a dependency failed.
    Skipped {
        /// Why, in a few words ("dependency zlib failed").
        reason: String,
    },
    /// Provided by the system; never built.
    External,
}

/// How many packages ended in each [`Outcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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

    /// True when no package failed.
    pub fn succeeded(&self) -> bool {
        self.counts().failed == 0
    }

    /// Sum of the packages' durations.
    pub fn total_duration(&self) -> Duration {
        self.packages.iter().map(|p| p.duration).sum()
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

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
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
            outcome,
            duration: Duration::from_secs(1),
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
                pkg("d", Outcome::Failed { log_tail: "x".into() }),
            ],
        };
        assert_eq!(s.counts().to_string(), "1 built, 2 cached, 1 failed");
        assert!(!s.succeeded());
        let s2 = RunSummary {
            stack: "demo".into(),
            packages: vec![
                pkg("a", Outcome::External),
                pkg("b", Outcome::Skipped { reason: "r".into() }),
            ],
        };
        assert_eq!(
            s2.counts().to_string(),
            "0 built, 0 cached, 0 failed, 1 skipped, 1 external"
        );
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

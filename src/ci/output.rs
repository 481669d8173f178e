//! CI-native output: log groups and error annotations in each CI's syntax, GitHub step
//! outputs and job summary, and a JUnit XML report.
//!
//! The formatting functions are pure (they return strings, the caller prints them); the
//! `append_*`/`write_*` functions do the file I/O the CI expects.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::builder::summary::{Outcome, RunSummary};
use crate::ci::env::Vars;
use crate::env_vars;

/// Which CI syntax to print log groups and annotations in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// GitHub Actions workflow commands (`::group::`, `::error ...::`).
    GitHub,
    /// GitLab collapsible sections (`section_start`/`section_end`).
    GitLab,
    /// Plain text (a terminal or another CI).
    Plain,
}

/// An error to show attached to a file and line (e.g. a stack file error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// File path, relative to the repository root for GitHub to link it.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub col: Option<u32>,
    /// Short title.
    pub title: Option<String>,
    /// The message (may span lines).
    pub message: String,
}

impl Flavor {
    /// GitHub when `GITHUB_ACTIONS=true`, GitLab when `GITLAB_CI=true`, else plain.
    pub fn detect(vars: &Vars) -> Flavor {
        if vars.is_true(env_vars::GITHUB_ACTIONS) {
            Flavor::GitHub
        } else if vars.is_true(env_vars::GITLAB_CI) {
            Flavor::GitLab
        } else {
            Flavor::Plain
        }
    }

    /// The line that opens a log group. `name` identifies the group (GitLab section names
    /// allow letters, digits, `_`, `.`, `-`; others become `_`), `title` is shown.
    /// GitLab sections start collapsed when `collapsed`.
    pub fn group_start(self, name: &str, title: &str, collapsed: bool) -> String {
        match self {
            Flavor::GitHub => format!("::group::{}\n", escape_data(title)),
            Flavor::GitLab => format!(
                "\x1b[0Ksection_start:{}:{}{}\r\x1b[0K{}\n",
                unix_now(),
                section_name(name),
                if collapsed { "[collapsed=true]" } else { "" },
                one_line(title)
            ),
            Flavor::Plain => format!("==> {}\n", one_line(title)),
        }
    }

    /// The line that closes the group `name` opened by [`Flavor::group_start`].
    pub fn group_end(self, name: &str) -> String {
        match self {
            Flavor::GitHub => "::endgroup::\n".to_string(),
            Flavor::GitLab => format!("\x1b[0Ksection_end:{}:{}\r\x1b[0K\n", unix_now(), section_name(name)),
            Flavor::Plain => String::new(),
        }
    }

    /// An error line: a GitHub `::error file=…,line=…::message` annotation, else
    /// `error: file:line:col: message`.
    pub fn error(self, a: &Annotation) -> String {
        match self {
            Flavor::GitHub => {
                let mut props = Vec::new();
                if let Some(f) = &a.file {
                    props.push(format!("file={}", escape_property(f)));
                }
                if let Some(l) = a.line {
                    props.push(format!("line={l}"));
                }
                if let Some(c) = a.col {
                    props.push(format!("col={c}"));
                }
                if let Some(t) = &a.title {
                    props.push(format!("title={}", escape_property(t)));
                }
                let sep = if props.is_empty() { "" } else { " " };
                format!("::error{sep}{}::{}\n", props.join(","), escape_data(&a.message))
            }
            Flavor::GitLab | Flavor::Plain => {
                let mut place = String::new();
                if let Some(f) = &a.file {
                    place.push_str(f);
                    if let Some(l) = a.line {
                        place.push_str(&format!(":{l}"));
                        if let Some(c) = a.col {
                            place.push_str(&format!(":{c}"));
                        }
                    }
                    place.push_str(": ");
                }
                let title = a.title.as_deref().map(|t| format!("{t}: ")).unwrap_or_default();
                format!("error: {place}{title}{}\n", a.message)
            }
        }
    }
}

/// Workflow command data escaping (as `@actions/core` does): `%`, CR, LF.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Workflow command property escaping: data escaping plus `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn section_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "section".to_string() } else { s }
}

fn one_line(s: &str) -> String {
    strip_ansi(s).replace(['\r', '\n'], " ")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One `GITHUB_OUTPUT` entry: `key=value` for one-line values, else the heredoc form
/// `key<<DELIM` / value / `DELIM` with a random delimiter that does not occur in the value.
pub fn github_output_entry(key: &str, value: &str) -> anyhow::Result<String> {
    if key.is_empty() || key.contains(['=', '\n', '\r']) || key.contains("<<") {
        bail!("{key:?} cannot be a GitHub output name (empty, or contains '=', '<<' or a line break)");
    }
    if !value.contains(['\n', '\r']) {
        return Ok(format!("{key}={value}\n"));
    }
    let state = RandomState::new();
    let mut salt = 0u64;
    loop {
        let mut h = state.build_hasher();
        h.write_u64(salt);
        let delim = format!("ghadelimiter_{:016x}", h.finish());
        if !value.contains(&delim) {
            return Ok(format!("{key}<<{delim}\n{value}\n{delim}\n"));
        }
        salt += 1;
    }
}

/// Appends `entries` to the `GITHUB_OUTPUT` file at `path`.
pub fn append_github_output(path: &Path, entries: &[(String, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (k, v) in entries {
        text.push_str(&github_output_entry(k, v)?);
    }
    append(path, &text)
}

/// Step outputs for a run: `built`, `cached`, `failed`, `skipped`, `external` (counts),
/// `result` (`success`/`failure`), `summary` ("12 built, 40 cached, 1 failed") and
/// `failed-packages` (one name per line).
pub fn summary_outputs(summary: &RunSummary) -> Vec<(String, String)> {
    let c = summary.counts();
    let failed: Vec<&str> = summary
        .packages
        .iter()
        .filter(|p| matches!(p.outcome, Outcome::Failed { .. }))
        .map(|p| p.name.as_str())
        .collect();
    [
        ("built", c.built.to_string()),
        ("cached", c.cached.to_string()),
        ("failed", c.failed.to_string()),
        ("skipped", c.skipped.to_string()),
        ("external", c.external.to_string()),
        (
            "result",
            if summary.succeeded() { "success" } else { "failure" }.to_string(),
        ),
        ("summary", c.to_string()),
        ("failed-packages", failed.join("\n")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Most log lines one failed package contributes to the job summary (GitHub caps a step's
/// summary at 1 MiB).
const SUMMARY_LOG_LINES: usize = 60;
/// Most bytes one failed package's log contributes to the job summary.
const SUMMARY_LOG_BYTES: usize = 16 * 1024;

/// The job summary Markdown: a heading with the counts, a table of packages, and the log
/// tail of each failed package in a collapsed block.
pub fn step_summary_markdown(summary: &RunSummary) -> String {
    let mut md = format!(
        "### stackci: {} — {}\n\n| Package | Version | Hash | Result | Time |\n|---|---|---|---|---:|\n",
        md_cell(&summary.stack),
        summary.counts()
    );
    for p in &summary.packages {
        let icon = match p.outcome {
            Outcome::Built => "✅",
            Outcome::Cached => "♻️",
            Outcome::Failed { .. } => "❌",
            Outcome::Skipped { .. } => "⏭️",
            Outcome::External => "📦",
        };
        let result = match &p.outcome {
            Outcome::Skipped { reason } => format!("{icon} skipped: {}", md_cell(reason)),
            o => format!("{icon} {}", o.word()),
        };
        md.push_str(&format!(
            "| {} | {} | `{}` | {} | {:.1} s |\n",
            md_cell(&p.name),
            md_cell(&p.version),
            md_cell(p.hash.get(..12).unwrap_or(&p.hash)),
            result,
            p.duration.as_secs_f64()
        ));
    }
    for p in &summary.packages {
        if let Outcome::Failed { log_tail, .. } = &p.outcome {
            let clean: String = strip_ansi(log_tail)
                .chars()
                .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
                .collect();
            let tail = tail_of(&clean, SUMMARY_LOG_LINES, SUMMARY_LOG_BYTES);
            let fence = "`".repeat(longest_backtick_run(&tail).max(2) + 1);
            md.push_str(&format!(
                "\n<details><summary>{} {}: end of the build log</summary>\n\n{fence}text\n{}\n{fence}\n\n</details>\n",
                md_cell(&p.name),
                md_cell(&p.version),
                tail
            ));
        }
    }
    md
}

/// Appends [`step_summary_markdown`] to the `GITHUB_STEP_SUMMARY` file at `path`.
pub fn append_step_summary(path: &Path, summary: &RunSummary) -> anyhow::Result<()> {
    append(path, &step_summary_markdown(summary))
}

/// In GitHub Actions, appends the job summary to `GITHUB_STEP_SUMMARY` and the
/// [`summary_outputs`] to `GITHUB_OUTPUT` (each only when its variable is set); elsewhere
/// does nothing.
pub fn publish_github(vars: &Vars, summary: &RunSummary) -> anyhow::Result<()> {
    if !vars.is_true(env_vars::GITHUB_ACTIONS) {
        return Ok(());
    }
    if let Some(path) = vars.get(env_vars::GITHUB_STEP_SUMMARY) {
        append_step_summary(Path::new(path), summary)?;
    }
    if let Some(path) = vars.get(env_vars::GITHUB_OUTPUT) {
        append_github_output(Path::new(path), &summary_outputs(summary))?;
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} to append", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("appending to {}", path.display()))
}

/// A Markdown table cell: one line, `|` escaped, HTML angle brackets neutralised.
fn md_cell(s: &str) -> String {
    one_line(s)
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// The last `max_lines` lines of `s`, and at most `max_bytes` bytes of them.
fn tail_of(s: &str, max_lines: usize, max_bytes: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let mut out = lines[lines.len().saturating_sub(max_lines)..].join("\n");
    if out.len() > max_bytes {
        let mut cut = out.len() - max_bytes;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = out[cut..].to_string();
    }
    out
}

/// Removes ANSI escape sequences (colours, cursor moves, OSC titles) from log text.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ST (ESC \).
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            // Two-character sequences (ESC c, ESC =, ...) and a lone trailing ESC.
            _ => {}
        }
    }
    out
}

/// Whether XML 1.0 allows `c` in a document.
fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text content: ANSI sequences and characters XML forbids removed, markup escaped.
fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in strip_ansi(s).chars().filter(|&c| xml_allowed(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value: like [`xml_text`], plus quotes, and whitespace kept as character
/// references (parsers normalise raw line breaks in attributes to spaces).
fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in xml_text(s).chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// A JUnit XML report of a run: one `<testsuite>` for the stack, one `<testcase>` per
/// package (name = package name, classname = `stackci.<stack>`). Built and cached packages
/// pass; failed ones carry `<failure>` with the log tail; skipped and external ones carry
/// `<skipped>` with the reason. Each case's `<system-out>` holds version, hash and outcome.
pub fn junit_xml(summary: &RunSummary) -> String {
    let c = summary.counts();
    let time = summary.total_duration().as_secs_f64();
    let suite = xml_attr(&format!("stackci/{}", summary.stack));
    let classname = xml_attr(&format!("stackci.{}", summary.stack));
    let tests = summary.packages.len();
    let skipped = c.skipped + c.external;
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"stackci\" tests=\"{tests}\" failures=\"{}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">\n\
         \x20 <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">\n",
        c.failed, c.failed
    );
    for p in &summary.packages {
        xml.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{classname}\" time=\"{:.3}\">\n",
            xml_attr(&p.name),
            p.duration.as_secs_f64()
        ));
        match &p.outcome {
            Outcome::Built | Outcome::Cached => {}
            Outcome::Failed { log_tail, .. } => xml.push_str(&format!(
                "      <failure message=\"{}\" type=\"build-failure\">{}</failure>\n",
                xml_attr(&format!(
                    "{} {} failed to build after {:.1} s",
                    p.name,
                    p.version,
                    p.duration.as_secs_f64()
                )),
                xml_text(log_tail)
            )),
            Outcome::Skipped { reason } => {
                xml.push_str(&format!("      <skipped message=\"{}\"/>\n", xml_attr(reason)))
            }
            Outcome::External => {
                xml.push_str("      <skipped message=\"external package: provided by the system, never built\"/>\n")
            }
        }
        xml.push_str(&format!(
            "      <system-out>{}</system-out>\n    </testcase>\n",
            xml_text(&format!(
                "version: {}\nhash: {}\noutcome: {}",
                p.version,
                p.hash,
                p.outcome.word()
            ))
        ));
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Writes [`junit_xml`] to `path` (through a temporary file in the same directory, renamed
/// into place, so a reader never sees half a report).
pub fn write_junit(path: &Path, summary: &RunSummary) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = crate::newfile::temp_in(dir, ".tmp-")
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(junit_xml(summary).as_bytes())
        .with_context(|| format!("writing JUnit report {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing JUnit report {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_commands_escape_their_data() {
        let a = Annotation {
            file: Some("dir,x/stack:1.yaml".into()),
            line: Some(7),
            col: None,
            title: None,
            message: "bad 100%\nsecond line".into(),
        };
        assert_eq!(
            Flavor::GitHub.error(&a),
            "::error file=dir%2Cx/stack%3A1.yaml,line=7::bad 100%25%0Asecond line\n"
        );
        assert_eq!(
            Flavor::Plain.error(&a),
            "error: dir,x/stack:1.yaml:7: bad 100%\nsecond line\n"
        );
        assert_eq!(
            Flavor::GitHub.group_start("x", "build zlib", true),
            "::group::build zlib\n"
        );
        assert_eq!(Flavor::GitHub.group_end("x"), "::endgroup::\n");
    }

    #[test]
    fn gitlab_sections_have_the_documented_shape() {
        let start = Flavor::GitLab.group_start("build zlib/1", "Build zlib", true);
        let rest = start.strip_prefix("\x1b[0Ksection_start:").unwrap();
        let (ts, rest) = rest.split_once(':').unwrap();
        assert!(ts.parse::<u64>().unwrap() > 1_600_000_000);
        assert_eq!(rest, "build_zlib_1[collapsed=true]\r\x1b[0KBuild zlib\n");
        let end = Flavor::GitLab.group_end("build zlib/1");
        assert!(end.starts_with("\x1b[0Ksection_end:") && end.ends_with(":build_zlib_1\r\x1b[0K\n"));
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(
            strip_ansi("\x1b[1;31merror\x1b[0m: x\x1b]0;title\x07 y\x1b"),
            "error: x y"
        );
    }

    #[test]
    fn outputs_use_heredocs_for_multiline_values() {
        assert_eq!(github_output_entry("n", "1").unwrap(), "n=1\n");
        let e = github_output_entry("names", "a\nb").unwrap();
        let (head, rest) = e.split_once('\n').unwrap();
        let delim = head.strip_prefix("names<<").unwrap();
        assert_eq!(rest, format!("a\nb\n{delim}\n"));
        assert!(github_output_entry("a=b", "x").is_err());
    }
}

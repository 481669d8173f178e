//! Progress for long work: indicatif bars on a terminal, plain timestamped lines elsewhere
//! (CI logs, pipes), nothing but errors with `-q`.
//!
//! [`Reporter`] is the scheduler's [`Progress`] sink: this module depends on the builder,
//! never the other way round.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::builder::schedule::{Event, Progress};
use crate::builder::summary::Outcome;
use crate::ci::output::Flavor;
use crate::stack::Stack;

/// How stackci's own lines in a build's output start; plain output shows them without `-v`.
pub const NOTE_PREFIX: &str = "stackci: ";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars (a terminal, not CI).
    Bars,
    /// Plain timestamped lines; with `verbose`, every recipe output line too.
    Plain {
        /// Echo recipe output.
        verbose: bool,
    },
    /// Only the final summary and errors.
    Quiet,
}

impl Mode {
    /// Bars on an interactive terminal outside CI, plain lines otherwise.
    pub fn detect(verbose: bool, quiet: bool) -> Mode {
        let ci = crate::env_vars::var(crate::env_vars::CI).is_some_and(|v| v != "false");
        if quiet {
            Mode::Quiet
        } else if !verbose && !ci && std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Plain { verbose }
        }
    }
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    jobs: Vec<Option<ProgressBar>>,
}

/// Turns run events into output on stderr.
pub struct Reporter<'s> {
    stack: &'s Stack,
    mode: Mode,
    groups: Option<(Flavor, PathBuf)>,
    start: Instant,
    bars: Mutex<Option<Bars>>,
    plain: Mutex<()>,
}

impl<'s> Reporter<'s> {
    /// A reporter for `stack` in `mode`.
    pub fn new(stack: &'s Stack, mode: Mode) -> Self {
        Reporter {
            stack,
            mode,
            groups: None,
            start: Instant::now(),
            bars: Mutex::new(None),
            plain: Mutex::new(()),
        }
    }

    /// In CI (`flavor` GitHub or GitLab) and plain mode, prints each finished package's log
    /// from `logs/<tag>.log` as a collapsible group (failed builds expanded on GitLab).
    pub fn with_log_groups(mut self, flavor: Flavor, logs: PathBuf) -> Self {
        if flavor != Flavor::Plain {
            self.groups = Some((flavor, logs));
        }
        self
    }

    fn print_log_group(&self, tag: &str, failed: bool) {
        let Some((flavor, logs)) = &self.groups else { return };
        let _guard = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        let title = format!("{} log of {tag}", if failed { "FAILED:" } else { "build" });
        let _ = err.write_all(flavor.group_start(tag, &title, !failed).as_bytes());
        if let Ok(file) = std::fs::File::open(logs.join(format!("{tag}.log"))) {
            let _ = std::io::copy(&mut std::io::BufReader::new(file), &mut err);
        }
        let _ = err.write_all(flavor.group_end(tag).as_bytes());
    }

    /// Prints a line (above the bars when they are shown), unless quiet.
    pub fn line(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bars => match &*self.bars.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(b) => b.multi.suspend(|| eprintln!("{text}")),
                None => eprintln!("{text}"),
            },
            Mode::Plain { .. } => self.plain_line(text),
        }
    }

    fn plain_line(&self, text: &str) {
        let _guard = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        let t = self.start.elapsed().as_secs_f64();
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        let _ = writeln!(std::io::stderr().lock(), "[{t:7.1}s] {clean}");
    }

    fn plain_event(&self, event: Event<'_>, verbose: bool) {
        match event {
            Event::Begin { total } => self.plain_line(&format!("{total} package(s) to build")),
            Event::Start { index } => self.plain_line(&format!("build    {}", self.stack.packages[index].tag())),
            // stackci's own notes in a build's output (where dependencies came from, how
            // Spack runs, a timeout) show even without -v.
            Event::Line { index, line } if verbose || line.starts_with(NOTE_PREFIX) => {
                self.plain_line(&format!("{}: {line}", self.stack.packages[index].name))
            }
            Event::Line { .. } => {}
            Event::Finish { package, .. } => {
                match package.outcome {
                    Outcome::Built => self.print_log_group(&package.tag, false),
                    Outcome::Failed { .. } => self.print_log_group(&package.tag, true),
                    _ => {}
                }
                self.plain_line(&package.describe())
            }
        }
    }

    fn bar_event(&self, event: Event<'_>) {
        let mut guard = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Begin { total } => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let overall = multi.add(ProgressBar::new(total as u64));
                overall.set_style(
                    ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} built {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                overall.enable_steady_tick(Duration::from_millis(200));
                *guard = Some(Bars {
                    multi,
                    overall,
                    jobs: vec![None; self.stack.packages.len()],
                });
            }
            Event::Start { index } => {
                if let Some(b) = guard.as_mut() {
                    let bar = b.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix:.bold} {wide_msg}").expect("valid template"),
                    );
                    bar.set_prefix(self.stack.packages[index].tag());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    b.jobs[index] = Some(bar);
                }
            }
            Event::Line { index, line } => {
                if let Some(Some(bar)) = guard.as_ref().map(|b| &b.jobs[index]) {
                    bar.set_message(line.chars().filter(|c| !c.is_control()).take(200).collect::<String>());
                }
            }
            Event::Finish { index, package } => {
                if let Some(b) = guard.as_mut() {
                    if let Some(bar) = b.jobs[index].take() {
                        bar.finish_and_clear();
                        b.multi.remove(&bar);
                    }
                    let text = package.describe();
                    b.multi.suspend(|| eprintln!("{text}"));
                    if matches!(package.outcome, Outcome::Built | Outcome::Cached) {
                        b.overall.inc(1);
                    } else if matches!(package.outcome, Outcome::Failed { .. }) {
                        b.overall.set_message("(failures)");
                    }
                }
            }
        }
        let done = guard.as_ref().is_some_and(|b| {
            b.jobs.iter().all(Option::is_none) && b.overall.position() >= b.overall.length().unwrap_or(0)
        });
        if done && let Some(b) = guard.take() {
            b.overall.finish_and_clear();
        }
    }

    /// Removes the bars (call when the run ends).
    pub fn finish(&self) {
        if let Some(b) = self.bars.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.overall.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

impl Progress for Reporter<'_> {
    fn event(&self, event: Event<'_>) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bars => self.bar_event(event),
            Mode::Plain { verbose } => self.plain_event(event, verbose),
        }
    }
}

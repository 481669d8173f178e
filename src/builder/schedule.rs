//! `stackci run`: build what the plan says, in dependency order, N at a time; keep going
//! on independent branches when one fails.
//!
//! The scheduler reports what happens to a [`Progress`] sink as it happens (the terminal or
//! CI log display in [`crate::report`] is one) and returns a [`RunSummary`].

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::job::{self, BuildSettings, Done};
use super::summary::{Outcome, PackageOutcome, RunSummary};
use crate::cancel;
use crate::mirror::Mirror;
use crate::plan::{Plan, Status};
use crate::stack::Stack;

/// Something that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts with `total` packages to build.
    Begin {
        /// Packages to build.
        total: usize,
    },
    /// Package `index` starts building.
    Start {
        /// Package index.
        index: usize,
    },
    /// A line of a recipe's output.
    Line {
        /// Package index.
        index: usize,
        /// The line, without its newline.
        line: &'a str,
    },
    /// Package `index` is done.
    Finish {
        /// Package index.
        index: usize,
        /// How it ended.
        package: &'a PackageOutcome,
    },
}

/// Where a run reports progress as it happens. Build threads call it too, hence `Sync`.
pub trait Progress: Sync {
    /// Handles one event.
    fn event(&self, event: Event<'_>);
}

/// The packages a run over `targets` involves: the targets and everything they need
/// (all dependency kinds, transitively). Empty `targets` means the whole stack.
pub fn involved(stack: &Stack, targets: &[usize]) -> BTreeSet<usize> {
    if targets.is_empty() {
        return (0..stack.packages.len()).collect();
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<usize> = targets.to_vec();
    while let Some(i) = todo.pop() {
        if seen.insert(i) {
            todo.extend(stack.packages[i].deps.iter().map(|d| d.index));
        }
    }
    seen
}

/// Builds every package of `plan` with status `build` among `involved`, at most `parallel`
/// at a time, each after its dependencies succeeded; returns what happened to every
/// package of `involved`, in stack order.
pub fn run(
    stack: &Stack,
    mirror: &dyn Mirror,
    plan: &Plan,
    involved: &BTreeSet<usize>,
    parallel: usize,
    settings: &BuildSettings,
    progress: &dyn Progress,
) -> RunSummary {
    let n = stack.packages.len();
    let mut done: Vec<Option<PackageOutcome>> = vec![None; n];
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ready: Vec<usize> = Vec::new();
    for &i in involved {
        let package = &stack.packages[i];
        match plan.packages[i].status {
            Status::Cached => done[i] = Some(PackageOutcome::new(package, Outcome::Cached, Duration::ZERO)),
            Status::External => done[i] = Some(PackageOutcome::new(package, Outcome::External, Duration::ZERO)),
            Status::Build => {
                for d in &package.deps {
                    if plan.packages[d.index].status == Status::Build {
                        waiting_on[i] += 1;
                        dependents[d.index].push(i);
                    }
                }
                if waiting_on[i] == 0 {
                    ready.push(i);
                }
            }
        }
    }
    let to_build = involved
        .iter()
        .filter(|&&i| plan.packages[i].status == Status::Build)
        .count();
    progress.event(Event::Begin { total: to_build });
    // Highest index last, so `pop` starts the earliest packages first.
    ready.sort_unstable_by(|a, b| b.cmp(a));

    let parallel = parallel.max(1);
    let (tx, rx) = mpsc::channel::<(usize, anyhow::Result<Done>, Duration)>();
    std::thread::scope(|scope| {
        let mut running = 0usize;
        loop {
            while running < parallel && !cancel::is_cancelled() {
                let Some(i) = ready.pop() else { break };
                running += 1;
                progress.event(Event::Start { index: i });
                let tx = tx.clone();
                scope.spawn(move || {
                    let start = Instant::now();
                    let result = job::build(stack, i, mirror, settings, &mut |line| {
                        progress.event(Event::Line { index: i, line })
                    });
                    let _ = tx.send((i, result, start.elapsed()));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((i, result, elapsed)) = rx.recv() else { break };
            running -= 1;
            let package = match &result {
                Ok(_) => {
                    for &j in &dependents[i] {
                        waiting_on[j] -= 1;
                        if waiting_on[j] == 0 {
                            ready.push(j);
                        }
                    }
                    ready.sort_unstable_by(|a, b| b.cmp(a));
                    finished(stack, i, &result, elapsed, settings)
                }
                Err(_) if cancel::is_cancelled() => skipped(stack, i, "interrupted"),
                Err(_) => {
                    let reason = format!("dependency `{}` failed", stack.packages[i].tag());
                    skip_dependents(stack, i, &dependents, &mut done, &reason, progress);
                    finished(stack, i, &result, elapsed, settings)
                }
            };
            progress.event(Event::Finish {
                index: i,
                package: &package,
            });
            done[i] = Some(package);
        }
    });
    let packages = involved
        .iter()
        .map(|&i| done[i].take().unwrap_or_else(|| skipped(stack, i, "interrupted")))
        .collect();
    RunSummary {
        stack: stack.name.clone(),
        packages,
        interrupted: cancel::is_cancelled(),
    }
}

/// Builds package `i` alone, as one CI job does, reporting to `progress`: its line in a
/// summary, and the result of [`job::build`] with the error and its causes.
pub fn build_one(
    stack: &Stack,
    i: usize,
    mirror: &dyn Mirror,
    settings: &BuildSettings,
    progress: &dyn Progress,
) -> (PackageOutcome, anyhow::Result<Done>) {
    progress.event(Event::Start { index: i });
    let start = Instant::now();
    let result = job::build(stack, i, mirror, settings, &mut |line| {
        progress.event(Event::Line { index: i, line })
    });
    let package = finished(stack, i, &result, start.elapsed(), settings);
    progress.event(Event::Finish {
        index: i,
        package: &package,
    });
    (package, result)
}

/// Package `i`'s line after a build attempt that took `elapsed` and gave `result`.
fn finished(
    stack: &Stack,
    i: usize,
    result: &anyhow::Result<Done>,
    elapsed: Duration,
    settings: &BuildSettings,
) -> PackageOutcome {
    let package = &stack.packages[i];
    let (outcome, duration) = match result {
        Ok(Done::Built) => (Outcome::Built, elapsed),
        Ok(Done::Cached) => (Outcome::Cached, Duration::ZERO),
        Err(e) => (
            Outcome::failed(format!("{e:#}"), settings.log_path(&package.tag())),
            elapsed,
        ),
    };
    PackageOutcome::new(package, outcome, duration)
}

/// Package `i`'s line when it was not attempted.
fn skipped(stack: &Stack, i: usize, reason: &str) -> PackageOutcome {
    let reason = reason.to_string();
    PackageOutcome::new(&stack.packages[i], Outcome::Skipped { reason }, Duration::ZERO)
}

/// Marks everything that depends on package `i` (transitively, and not done yet) skipped.
fn skip_dependents(
    stack: &Stack,
    i: usize,
    dependents: &[Vec<usize>],
    done: &mut [Option<PackageOutcome>],
    reason: &str,
    progress: &dyn Progress,
) {
    let mut todo = dependents[i].clone();
    while let Some(j) = todo.pop() {
        if done[j].is_none() {
            let package = skipped(stack, j, reason);
            progress.event(Event::Finish {
                index: j,
                package: &package,
            });
            done[j] = Some(package);
            todo.extend(dependents[j].iter().copied());
        }
    }
}

//! `stackci run`: build what the plan says, in dependency order, N at a time; keep going
//! on independent branches when one fails.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::job::{self, BuildSettings, Done};
use crate::cancel;
use crate::mirror::Mirror;
use crate::plan::{Plan, Status};
use crate::report::{Event, Reporter};
use crate::stack::Stack;

/// What happened to one package in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Built and pushed.
    Built {
        /// Wall time of the build.
        elapsed: Duration,
    },
    /// Already in the mirror.
    Cached,
    /// Provided by the system.
    External,
    /// The build failed.
    Failed {
        /// The error, with its causes.
        error: String,
    },
    /// Not attempted because a dependency failed (named) or the run was interrupted.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// Every package's outcome, in stack order.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `(package index, outcome)` for each package the run was about.
    pub outcomes: Vec<(usize, Outcome)>,
    /// True when Ctrl-C stopped the run.
    pub interrupted: bool,
}

impl RunReport {
    /// True when nothing failed, nothing was skipped and the run was not interrupted.
    pub fn success(&self) -> bool {
        !self.interrupted
            && self
                .outcomes
                .iter()
                .all(|(_, o)| !matches!(o, Outcome::Failed { .. } | Outcome::Skipped { .. }))
    }

    /// Counts of built, cached, failed and skipped packages.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for (_, o) in &self.outcomes {
            match o {
                Outcome::Built { .. } => c.0 += 1,
                Outcome::Cached => c.1 += 1,
                Outcome::Failed { .. } => c.2 += 1,
                Outcome::Skipped { .. } => c.3 += 1,
                Outcome::External => {}
            }
        }
        c
    }
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
/// at a time, each after its dependencies succeeded.
pub fn run(
    stack: &Stack,
    mirror: &dyn Mirror,
    plan: &Plan,
    involved: &BTreeSet<usize>,
    parallel: usize,
    settings: &BuildSettings,
    reporter: &Reporter,
) -> RunReport {
    let n = stack.packages.len();
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ready: Vec<usize> = Vec::new();
    for &i in involved {
        match plan.packages[i].status {
            Status::Cached => outcome[i] = Some(Outcome::Cached),
            Status::External => outcome[i] = Some(Outcome::External),
            Status::Build => {
                for d in &stack.packages[i].deps {
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
    reporter.event(Event::Begin { total: to_build });
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
                reporter.event(Event::Start { index: i });
                let tx = tx.clone();
                scope.spawn(move || {
                    let start = Instant::now();
                    let result = job::build(stack, i, mirror, settings, &mut |line| {
                        reporter.event(Event::Line { index: i, line })
                    });
                    let _ = tx.send((i, result, start.elapsed()));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((i, result, elapsed)) = rx.recv() else { break };
            running -= 1;
            let o = match result {
                Ok(done) => {
                    for &j in &dependents[i] {
                        waiting_on[j] -= 1;
                        if waiting_on[j] == 0 {
                            ready.push(j);
                        }
                    }
                    ready.sort_unstable_by(|a, b| b.cmp(a));
                    match done {
                        Done::Built => Outcome::Built { elapsed },
                        Done::Cached => Outcome::Cached,
                    }
                }
                Err(_) if cancel::is_cancelled() => Outcome::Skipped {
                    reason: "interrupted".into(),
                },
                Err(e) => {
                    let reason = format!("dependency `{}` failed", stack.packages[i].tag());
                    skip_dependents(i, &dependents, &mut outcome, &reason, reporter);
                    Outcome::Failed {
                        error: format!("{e:#}"),
                    }
                }
            };
            reporter.event(Event::Finish { index: i, outcome: &o });
            outcome[i] = Some(o);
        }
    });
    let interrupted = cancel::is_cancelled();
    let outcomes = involved
        .iter()
        .map(|&i| {
            let o = outcome[i].clone().unwrap_or_else(|| Outcome::Skipped {
                reason: "interrupted".into(),
            });
            (i, o)
        })
        .collect();
    RunReport { outcomes, interrupted }
}

fn skip_dependents(
    i: usize,
    dependents: &[Vec<usize>],
    outcome: &mut [Option<Outcome>],
    reason: &str,
    reporter: &Reporter,
) {
    let mut todo = dependents[i].clone();
    while let Some(j) = todo.pop() {
        if outcome[j].is_none() {
            let o = Outcome::Skipped {
                reason: reason.to_string(),
            };
            reporter.event(Event::Finish { index: j, outcome: &o });
            outcome[j] = Some(o);
            todo.extend(dependents[j].iter().copied());
        }
    }
}

//! The process-wide tokio runtime that every network client runs on.
//!
//! stackci's mirror and status APIs are synchronous (the scheduler runs recipes on plain
//! threads); the registry client, the S3 SDK, octocrab and reqwest are async. They all run
//! on this one runtime, started on first use: a multi-thread runtime with 2 to 4 workers
//! named `stackci-net` (network I/O needs few threads, and a build machine's cores belong
//! to the recipes). Sharing it keeps connection pools and the SDK's background tasks in
//! one place instead of one runtime per client.
//!
//! **Never call [`block_on`] (or a synchronous API built on it) from inside an async
//! context**: tokio cannot block a thread that drives tasks. [`block_on`] checks and
//! returns [`RuntimeError::InsideAsync`] instead of panicking, so the mistake is an error
//! that names the rule.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// Name of the runtime's worker threads (visible in `top -H`, debuggers and panics).
pub const THREAD_NAME: &str = "stackci-net";

/// The runtime, or why it could not be started (kept, so every caller gets the reason).
static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Why the shared runtime cannot run a future.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// [`block_on`] was called from inside an async context.
    #[error("stackci's network clients are synchronous: call them from a plain thread, not from inside an async task")]
    InsideAsync,
    /// The runtime could not be started (threads or the I/O driver could not be created).
    #[error("cannot start the runtime for network requests: {0}")]
    Start(String),
}

/// Worker threads: the machine's parallelism, clamped to 2..=4.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// The shared runtime, started on the first call.
pub fn get() -> Result<&'static Runtime, RuntimeError> {
    let runtime = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(workers())
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    runtime.as_ref().map_err(|e| RuntimeError::Start(e.clone()))
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread; safe
/// from any number of plain threads at once. Fails with [`RuntimeError::InsideAsync`] when
/// called from inside an async context (where blocking would panic or stall the runtime).
pub fn block_on<F: Future>(future: F) -> Result<F::Output, RuntimeError> {
    if Handle::try_current().is_ok() {
        return Err(RuntimeError::InsideAsync);
    }
    Ok(get()?.block_on(future))
}

/// Starts `future` on the shared runtime without waiting for it (a download feeding a
/// synchronous reader, for instance); callable from anywhere.
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>, RuntimeError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(get()?.spawn(future))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_for_every_thread() {
        let names: Vec<String> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    block_on(async {
                        tokio::spawn(async { std::thread::current().name().map(str::to_string) })
                            .await
                            .unwrap()
                    })
                    .unwrap()
                })
            })
            .map(|t| t.join().unwrap().unwrap_or_default())
            .collect();
        assert!(names.iter().all(|n| n == THREAD_NAME), "{names:?}");
        assert!(std::ptr::eq(get().unwrap(), get().unwrap()));
        assert_eq!(spawn(async { 7 }).map(|h| block_on(h).unwrap().unwrap()), Ok(7));
    }

    #[test]
    fn blocking_inside_async_is_an_error_not_a_panic() {
        let inner = block_on(async { block_on(async { 1 }) }).unwrap();
        assert_eq!(inner, Err(RuntimeError::InsideAsync));
        let other = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(
            other.block_on(async { block_on(async { 1 }) }),
            Err(RuntimeError::InsideAsync)
        );
        assert!(RuntimeError::InsideAsync.to_string().contains("synchronous"));
    }
}

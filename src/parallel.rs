//! Running a fallible function over many items on a few threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Result;

/// Calls `f` on every item, `jobs` at a time (at least one thread, at most one per item),
/// and returns the results in input order. Items are started in order; after a failure no
/// new item starts, and the first failure in input order is returned.
pub fn try_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let slots: Vec<Mutex<Option<Result<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                while !failed.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let result = f(item);
                    failed.fetch_or(result.is_err(), Ordering::SeqCst);
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for slot in slots {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(result) => out.push(result?),
            // Never started: an earlier item failed, and its error was returned above.
            None => unreachable!("items start in order, so an unstarted one follows a failure"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_and_the_first_failure_wins() {
        let items: Vec<u32> = (0..50).collect();
        assert_eq!(
            try_map(&items, 4, |&i| Ok(i * 2)).unwrap(),
            (0..50).map(|i| i * 2).collect::<Vec<_>>()
        );
        let err = try_map(
            &items,
            3,
            |&i| if i % 10 == 7 { anyhow::bail!("item {i}") } else { Ok(i) },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "item 7");
        assert!(try_map(&[] as &[u32], 4, |&i| Ok(i)).unwrap().is_empty());
    }
}

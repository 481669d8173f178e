//! Deterministic topological order and cycle reporting.
//!
//! Kahn's algorithm with a min-heap: among the nodes whose dependencies are all placed,
//! the one with the smallest key goes next. The order therefore depends only on the graph
//! and the keys (package names, then hashes), never on the order of the input file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Orders nodes `0..deps.len()` so that every node comes after the nodes it depends on
/// (`deps[i]` lists what node `i` depends on); ties are broken by smallest `key`.
///
/// Returns the order (a permutation of the indices), or, when the graph has a cycle,
/// the nodes of one cycle `[a, b, c]` meaning `a -> b -> c -> a` (each depends on the
/// next), starting at its smallest key.
pub fn toposort<K: Ord>(keys: &[K], deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut missing: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<(&K, usize)>> = (0..n)
        .filter(|&i| missing[i] == 0)
        .map(|i| Reverse((&keys[i], i)))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(i);
        for &j in &dependents[i] {
            missing[j] -= 1;
            if missing[j] == 0 {
                ready.push(Reverse((&keys[j], j)));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(find_cycle(keys, deps, &missing))
}

/// One cycle among the nodes not placed (`missing[i] > 0`). Every such node has a
/// dependency that is also not placed, so following the smallest one from the smallest
/// node must come back to a node already on the path.
fn find_cycle<K: Ord>(keys: &[K], deps: &[Vec<usize>], missing: &[usize]) -> Vec<usize> {
    let stuck = |i: &usize| missing[*i] > 0;
    let by_key = |a: &usize, b: &usize| keys[*a].cmp(&keys[*b]).then(a.cmp(b));
    let Some(start) = (0..deps.len()).filter(stuck).min_by(by_key) else {
        return Vec::new();
    };
    let mut on_path = vec![usize::MAX; deps.len()];
    let mut path = Vec::new();
    let mut node = start;
    while on_path[node] == usize::MAX {
        on_path[node] = path.len();
        path.push(node);
        match deps[node].iter().copied().filter(stuck).min_by(by_key) {
            Some(next) => node = next,
            None => return path, // unreachable for a graph Kahn could not finish
        }
    }
    let mut cycle = path.split_off(on_path[node]);
    let first = (0..cycle.len())
        .min_by(|&a, &b| by_key(&cycle[a], &cycle[b]))
        .unwrap_or(0);
    cycle.rotate_left(first);
    cycle
}

/// `a -> b -> c -> a` for the cycle `[a, b, c]`, naming each node with `name`.
pub fn format_cycle(cycle: &[usize], name: impl Fn(usize) -> String) -> String {
    let mut parts: Vec<String> = cycle.iter().map(|&i| name(i)).collect();
    if let Some(&first) = cycle.first() {
        parts.push(name(first));
    }
    parts.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_first_ties_by_key() {
        // c depends on a and b; b depends on a; d is alone. Input order scrambled.
        let keys = ["d", "c", "b", "a"];
        let deps = vec![vec![], vec![3, 2], vec![3], vec![]];
        let order = toposort(&keys, &deps).unwrap();
        let names: Vec<&str> = order.iter().map(|&i| keys[i]).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn order_does_not_depend_on_input_order() {
        let keys = ["x", "y", "z", "w"];
        let deps = vec![vec![3], vec![3], vec![], vec![]];
        let names: Vec<&str> = toposort(&keys, &deps).unwrap().iter().map(|&i| keys[i]).collect();
        assert_eq!(names, ["w", "x", "y", "z"]);
        let keys = ["w", "z", "y", "x"];
        let deps = vec![vec![], vec![], vec![0], vec![0]];
        let names: Vec<&str> = toposort(&keys, &deps).unwrap().iter().map(|&i| keys[i]).collect();
        assert_eq!(names, ["w", "x", "y", "z"]);
    }

    #[test]
    fn reports_the_cycle() {
        // top -> c -> a -> b -> c; the cycle starts at its smallest name.
        let keys = ["top", "c", "a", "b", "free"];
        let deps = vec![vec![1], vec![2], vec![3], vec![1], vec![]];
        let cycle = toposort(&keys, &deps).unwrap_err();
        assert_eq!(format_cycle(&cycle, |i| keys[i].to_string()), "a -> b -> c -> a");
    }

    #[test]
    fn self_loop() {
        let keys = ["a"];
        let cycle = toposort(&keys, &[vec![0]]).unwrap_err();
        assert_eq!(format_cycle(&cycle, |i| keys[i].to_string()), "a -> a");
    }
}

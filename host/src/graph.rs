//! Dependency graphs of processes, by index: the first cycle, and the levels a start-up
//! goes through (each process one level above everything it depends on). The config check
//! names cycles with it, `check` prints the levels, and the supervisor stops processes in
//! the reverse of them.

/// `deps[i]`: the processes `i` depends on.
pub type Deps = [Vec<usize>];

/// A cycle, as the indices along it, the first repeated at the end (`a -> b -> a`); the
/// one found first in index order. `None` when there is none.
pub fn cycle(deps: &Deps) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    // Iterative depth-first search: a long chain of dependencies cannot overflow the stack.
    for root in 0..deps.len() {
        if mark[root] != Mark::New {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            match deps[node].get(*next) {
                Some(&d) => {
                    *next += 1;
                    match mark.get(d) {
                        Some(Mark::New) => {
                            mark[d] = Mark::Open;
                            path.push((d, 0));
                        }
                        Some(Mark::Open) => {
                            let from = path.iter().position(|(n, _)| *n == d).unwrap_or(0);
                            let mut c: Vec<usize> = path[from..].iter().map(|(n, _)| *n).collect();
                            c.push(d);
                            return Some(c);
                        }
                        _ => {}
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    path.pop();
                }
            }
        }
    }
    None
}

/// The start-up levels of an acyclic graph: level 0 depends on nothing, level `k` on
/// something at level `k - 1` and nothing higher. Each level lists indices in order.
/// (Processes on a cycle, which the config check refuses first, are put at level 0.)
pub fn levels(deps: &Deps) -> Vec<Vec<usize>> {
    let n = deps.len();
    let dependents = dependents(deps);
    let mut waiting = vec![0usize; n];
    for ds in &dependents {
        for &j in ds {
            waiting[j] += 1;
        }
    }
    let mut level = vec![0usize; n];
    let mut ready: std::collections::VecDeque<usize> =
        (0..n).filter(|i| waiting[*i] == 0).collect();
    while let Some(i) = ready.pop_front() {
        for &j in &dependents[i] {
            level[j] = level[j].max(level[i] + 1);
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push_back(j);
            }
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, l) in level.into_iter().enumerate() {
        let l = if waiting[i] > 0 { 0 } else { l };
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(i);
    }
    out
}

/// `dependents[i]`: the processes that depend on `i`.
pub fn dependents(deps: &Deps) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            if d < deps.len() && !out[d].contains(&i) {
                out[d].push(i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_found_in_order_and_an_acyclic_graph_has_none() {
        // 0 -> 1 -> 2 -> 1
        assert_eq!(cycle(&[vec![1], vec![2], vec![1]]), Some(vec![1, 2, 1]));
        assert_eq!(cycle(&[vec![0]]), Some(vec![0, 0]));
        assert_eq!(cycle(&[vec![1], vec![0]]), Some(vec![0, 1, 0]));
        assert_eq!(cycle(&[vec![], vec![0], vec![0, 1]]), None);
        assert_eq!(cycle(&[]), None);
        // A long chain is no problem.
        let chain: Vec<Vec<usize>> = (0..100_000)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        assert_eq!(cycle(&chain), None);
    }

    #[test]
    fn levels_put_each_process_above_what_it_needs() {
        // db; migrate needs db; api and worker need db and migrate; web needs api.
        let deps = [vec![], vec![0], vec![0, 1], vec![1], vec![2]];
        assert_eq!(levels(&deps), vec![vec![0], vec![1], vec![2, 3], vec![4]]);
        assert_eq!(levels(&[vec![], vec![]]), vec![vec![0, 1]]);
        assert_eq!(
            dependents(&deps),
            vec![vec![1, 2], vec![2, 3], vec![4], vec![], vec![]]
        );
    }
}

//! Finding a cycle among named edges, for the rules that forbid one (`depends_on`,
//! `must_precede`/`must_follow`).

use std::collections::HashMap;

/// The edge that closes the first cycle found, if any (depth-first search).
pub(super) fn first_cycle_edge<'a, T>(
    edges: &'a [(&'a str, &'a str, T)],
) -> Option<(&'a str, &'a str, &'a T)> {
    let mut adj: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (a, _, _)) in edges.iter().enumerate() {
        adj.entry(a).or_default().push(i);
    }
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a, T>(
        n: &'a str,
        edges: &'a [(&'a str, &'a str, T)],
        adj: &HashMap<&'a str, Vec<usize>>,
        state: &mut HashMap<&'a str, u8>,
    ) -> Option<usize> {
        state.insert(n, 1);
        for &i in adj.get(n).into_iter().flatten() {
            let next = edges[i].1;
            match state.get(next) {
                Some(1) => return Some(i),
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, edges, adj, state) {
                        return Some(found);
                    }
                }
            }
        }
        state.insert(n, 2);
        None
    }
    let mut starts: Vec<&str> = edges.iter().map(|e| e.0).collect();
    starts.dedup();
    for s in starts {
        if !state.contains_key(s)
            && let Some(i) = visit(s, edges, &adj, &mut state)
        {
            let (a, b, t) = &edges[i];
            return Some((a, b, t));
        }
    }
    None
}

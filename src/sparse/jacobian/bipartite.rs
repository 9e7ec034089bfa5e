//! Colouring a Jacobian pattern for compressed sweeps: partial distance-2 colouring of the
//! bipartite row–column graph.
//!
//! A *column colouring* gives columns that share a row different colours. Then every row
//! has at most one column of each colour, and one forward sweep seeded with the sum of
//! the unit vectors of one colour's columns gives, in output `i`, exactly the entry
//! `(i, j)` of the one column `j` of that colour in row `i`: `J·s_c` holds every entry of
//! colour `c`. A *row colouring* is the same on the transpose (rows that share a column
//! differ), read from reverse sweeps `s_cᵀ·J`.
//!
//! The greedy algorithm gives each vertex (column, or row) in turn the smallest colour
//! none of its distance-2 neighbours has. The order matters: on the five-point stencil
//! the natural, largest-first, smallest-last and incidence-degree orders all need 7
//! colours, where 5 suffice. So the first colouring, in incidence-degree order (the
//! vertex with the most coloured neighbours next), is kept only if it meets the lower
//! bound (the largest net); else, where every distance-2 degree is below 128 (the sparse,
//! structured patterns where the count matters most), the next vertex is the one whose
//! neighbours show the most distinct colours (DSATUR, ties to the most neighbours), which
//! finds the 5; failing that, a few passes of iterated greedy, which never add a colour
//! and often remove one. Either way the count is at most the largest
//! distance-2 degree plus one, and at least the largest net (a row's entries, for a column
//! colouring), which every colouring must give distinct colours. Cost: the sum over nets
//! of their squared sizes (times a logarithm for DSATUR's queue).

/// Vertices of no net (empty columns or rows) are not coloured: no sweep needs them.
pub(crate) const UNCOLOURED: u32 = u32::MAX;

/// A colouring of one side of the bipartite graph.
#[derive(Clone, Debug)]
pub(crate) struct Bipartite {
    /// Colour of each vertex, or [`UNCOLOURED`].
    pub(crate) colours: Vec<u32>,
    /// Number of colours.
    pub(crate) count: usize,
}

/// Greedy partial distance-2 colouring of the vertices of a bipartite graph given both
/// ways: vertex `v`'s nets are `v_nets[v_ptr[v]..v_ptr[v + 1]]`, net `r`'s vertices
/// `net_vs[net_ptr[r]..net_ptr[r + 1]]`. Vertices sharing a net get different colours.
pub(crate) fn colour(
    v_ptr: &[usize],
    v_nets: &[usize],
    net_ptr: &[usize],
    net_vs: &[usize],
) -> Bipartite {
    let mut best = incidence_order(v_ptr, v_nets, net_ptr, net_vs);
    // No colouring has fewer colours than the largest net has members.
    let bound = net_ptr.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    if best.count <= bound {
        return best;
    }
    if let Some(c) = saturation(v_ptr, v_nets, net_ptr, net_vs) {
        if c.count < best.count {
            return c;
        }
    }
    let mut current = best.clone();
    for pass in 0..ITERATIONS {
        if best.count <= bound {
            break;
        }
        current = regreedy(&current, pass, v_ptr, v_nets, net_ptr, net_vs);
        if current.count < best.count {
            best = current.clone();
        }
    }
    best
}

/// Passes of iterated greedy after the first colouring.
const ITERATIONS: usize = 6;

/// Iterated greedy (Culberson): greedy again, visiting the vertices class by class (all
/// of one colour, then all of another), never needs more colours than `previous`, and
/// often fewer. Classes in reverse order on even passes, largest first on odd ones.
fn regreedy(
    previous: &Bipartite,
    pass: usize,
    v_ptr: &[usize],
    v_nets: &[usize],
    net_ptr: &[usize],
    net_vs: &[usize],
) -> Bipartite {
    let count = previous.count;
    let mut size = vec![0usize; count];
    for &c in &previous.colours {
        if c != UNCOLOURED {
            size[c as usize] += 1;
        }
    }
    let mut classes: Vec<usize> = (0..count).rev().collect();
    if pass % 2 == 1 {
        classes.sort_by_key(|&c| std::cmp::Reverse(size[c]));
    }
    let mut rank = vec![0usize; count];
    for (k, &c) in classes.iter().enumerate() {
        rank[c] = k;
    }
    let mut order: Vec<usize> = (0..previous.colours.len())
        .filter(|&v| previous.colours[v] != UNCOLOURED)
        .collect();
    order.sort_by_key(|&v| rank[previous.colours[v] as usize]);
    in_order(&order, v_ptr, v_nets, net_ptr, net_vs)
}

/// Greedy colouring of the vertices of `order`, in that order.
fn in_order(
    order: &[usize],
    v_ptr: &[usize],
    v_nets: &[usize],
    net_ptr: &[usize],
    net_vs: &[usize],
) -> Bipartite {
    let mut colours = vec![UNCOLOURED; v_ptr.len() - 1];
    let mut forbidden: Vec<usize> = Vec::new();
    let mut count = 0;
    for &v in order {
        let stamp = v + 1;
        for &r in &v_nets[v_ptr[v]..v_ptr[v + 1]] {
            for &u in &net_vs[net_ptr[r]..net_ptr[r + 1]] {
                let c = colours[u];
                if c != UNCOLOURED {
                    forbidden[c as usize] = stamp;
                }
            }
        }
        let c = forbidden
            .iter()
            .position(|&s| s != stamp)
            .unwrap_or(forbidden.len());
        if c == forbidden.len() {
            forbidden.push(0);
        }
        colours[v] = c as u32;
        count = count.max(c + 1);
    }
    Bipartite { colours, count }
}

/// DSATUR (Brélaz): next, the vertex whose distance-2 neighbours already show the most
/// distinct colours (ties: the most neighbours). Tracks the colours seen per vertex in a
/// 128-bit mask, so it runs only where every colouring it could make fits (`None`
/// otherwise: a distance-2 degree of 128 or more).
fn saturation(
    v_ptr: &[usize],
    v_nets: &[usize],
    net_ptr: &[usize],
    net_vs: &[usize],
) -> Option<Bipartite> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let nv = v_ptr.len() - 1;
    let nets = |v: usize| &v_nets[v_ptr[v]..v_ptr[v + 1]];
    let members = |r: usize| &net_vs[net_ptr[r]..net_ptr[r + 1]];
    let mut seen = vec![0usize; nv];
    let mut degree = vec![0usize; nv];
    for v in 0..nv {
        let stamp = v + 1;
        seen[v] = stamp;
        for &r in nets(v) {
            for &u in members(r) {
                if seen[u] != stamp {
                    seen[u] = stamp;
                    degree[v] += 1;
                }
            }
        }
        if degree[v] >= 128 {
            return None;
        }
    }
    seen.fill(0);
    let mut masks = vec![0u128; nv];
    let mut colours = vec![UNCOLOURED; nv];
    let mut heap: BinaryHeap<(u32, usize, Reverse<usize>)> = (0..nv)
        .filter(|&v| !nets(v).is_empty())
        .map(|v| (0, degree[v], Reverse(v)))
        .collect();
    let mut count = 0;
    while let Some((sat, _, Reverse(v))) = heap.pop() {
        if colours[v] != UNCOLOURED || sat != masks[v].count_ones() {
            continue;
        }
        let c = (!masks[v]).trailing_zeros();
        colours[v] = c;
        count = count.max(c as usize + 1);
        let stamp = v + 1;
        seen[v] = stamp;
        for &r in nets(v) {
            for &u in members(r) {
                if colours[u] == UNCOLOURED && seen[u] != stamp {
                    seen[u] = stamp;
                    if masks[u] & (1 << c) == 0 {
                        masks[u] |= 1 << c;
                        heap.push((masks[u].count_ones(), degree[u], Reverse(u)));
                    }
                }
            }
        }
    }
    Some(Bipartite { colours, count })
}

/// Greedy in incidence-degree order.
fn incidence_order(
    v_ptr: &[usize],
    v_nets: &[usize],
    net_ptr: &[usize],
    net_vs: &[usize],
) -> Bipartite {
    let nv = v_ptr.len() - 1;
    let nets = |v: usize| &v_nets[v_ptr[v]..v_ptr[v + 1]];
    let members = |r: usize| &net_vs[net_ptr[r]..net_ptr[r + 1]];
    // Ties broken largest first: an upper bound on each vertex's distance-2 degree.
    let degree: Vec<usize> = (0..nv)
        .map(|v| nets(v).iter().map(|&r| members(r).len() - 1).sum())
        .collect();
    let mut order: Vec<usize> = (0..nv).filter(|&v| !nets(v).is_empty()).collect();
    order.sort_by_key(|&v| degree[v]);

    // Incidence-degree order: next, the vertex with the most coloured distance-2
    // neighbours (buckets by that count, stale entries skipped).
    let mut incidence = vec![0usize; nv];
    let mut buckets: Vec<Vec<usize>> = vec![order];
    let mut top = 0;
    let mut colours = vec![UNCOLOURED; nv];
    // `stamp[c] == v + 1`: colour `c` is taken by a distance-2 neighbour of `v`;
    // `seen[u] == v + 1`: `u` already counted as a neighbour of `v`.
    let mut forbidden: Vec<usize> = Vec::new();
    let mut seen = vec![0usize; nv];
    let mut count = 0;
    loop {
        while buckets[top].is_empty() {
            if top == 0 {
                return Bipartite { colours, count };
            }
            top -= 1;
        }
        let v = buckets[top].pop().expect("non-empty");
        if colours[v] != UNCOLOURED || incidence[v] != top {
            continue;
        }
        let stamp = v + 1;
        for &r in nets(v) {
            for &u in members(r) {
                let c = colours[u];
                if c != UNCOLOURED {
                    forbidden[c as usize] = stamp;
                }
            }
        }
        let c = forbidden
            .iter()
            .position(|&s| s != stamp)
            .unwrap_or(forbidden.len());
        if c == forbidden.len() {
            forbidden.push(0);
        }
        colours[v] = c as u32;
        count = count.max(c + 1);
        for &r in nets(v) {
            for &u in members(r) {
                if colours[u] == UNCOLOURED && seen[u] != stamp {
                    seen[u] = stamp;
                    incidence[u] += 1;
                    let d = incidence[u];
                    if d == buckets.len() {
                        buckets.push(Vec::new());
                    }
                    buckets[d].push(u);
                    top = top.max(d);
                }
            }
        }
    }
}

/// True if no two vertices sharing a net have the same colour and every vertex of a net
/// is coloured (for tests and debug checks).
pub(crate) fn is_valid(colouring: &Bipartite, net_ptr: &[usize], net_vs: &[usize]) -> bool {
    let mut seen: Vec<usize> = vec![usize::MAX; colouring.count];
    for r in 0..net_ptr.len() - 1 {
        for &u in &net_vs[net_ptr[r]..net_ptr[r + 1]] {
            let c = colouring.colours[u];
            if c == UNCOLOURED || c as usize >= colouring.count || seen[c as usize] == r {
                return false;
            }
            seen[c as usize] = r;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::jacobian::pattern::JacobianPattern;

    /// Deterministic pseudo-random numbers.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    fn pattern(m: usize, n: usize, rows: impl Fn(usize) -> Vec<usize>) -> JacobianPattern {
        let mut row_ptr = vec![0];
        let mut col_idx = Vec::new();
        for i in 0..m {
            let mut r = rows(i);
            r.sort_unstable();
            r.dedup();
            col_idx.extend(r);
            row_ptr.push(col_idx.len());
        }
        JacobianPattern::from_csr(m, n, row_ptr, col_idx)
    }

    fn columns(p: &JacobianPattern) -> Bipartite {
        let (col_ptr, row_idx, _) = p.csc();
        colour(&col_ptr, &row_idx, p.row_ptr(), p.col_idx())
    }

    fn rows(p: &JacobianPattern) -> Bipartite {
        let (col_ptr, row_idx, _) = p.csc();
        colour(p.row_ptr(), p.col_idx(), &col_ptr, &row_idx)
    }

    #[test]
    fn random_patterns_are_validly_coloured_both_ways() {
        let mut next = rng(7);
        for trial in 0..200 {
            let m = (next() % 40) as usize;
            let n = 1 + (next() % 40) as usize;
            let density = 1 + next() % 6;
            let mut entries = vec![Vec::new(); m];
            for row in entries.iter_mut() {
                for j in 0..n {
                    if next() % 20 < density {
                        row.push(j);
                    }
                }
            }
            let p = pattern(m, n, |i| entries[i].clone());
            let (col_ptr, row_idx, _) = p.csc();
            let c = columns(&p);
            assert!(is_valid(&c, p.row_ptr(), p.col_idx()), "trial {trial}");
            assert!(c.count >= p.max_row_len(), "trial {trial}");
            let r = rows(&p);
            assert!(is_valid(&r, &col_ptr, &row_idx), "trial {trial}");
            assert!(r.count >= p.max_col_len(), "trial {trial}");
            // Empty columns are left uncoloured, non-empty ones coloured.
            for j in 0..n {
                assert_eq!(c.colours[j] == UNCOLOURED, col_ptr[j] == col_ptr[j + 1]);
            }
        }
    }

    #[test]
    fn banded_patterns_take_their_bandwidth() {
        for half in 0..4 {
            let n = 50;
            let p = pattern(n, n, |i| {
                (i.saturating_sub(half)..(i + half + 1).min(n)).collect()
            });
            // A row has 2·half + 1 entries, and consecutive columns all meet in a row.
            assert_eq!(columns(&p).count, 2 * half + 1);
            assert_eq!(rows(&p).count, 2 * half + 1);
        }
    }

    #[test]
    fn five_point_stencil_takes_at_most_max_row_plus_one() {
        let k = 20;
        let p = pattern(k * k, k * k, |r| {
            let (a, b) = (r / k, r % k);
            let mut row = vec![r];
            if a > 0 {
                row.push(r - k);
            }
            if a + 1 < k {
                row.push(r + k);
            }
            if b > 0 {
                row.push(r - 1);
            }
            if b + 1 < k {
                row.push(r + 1);
            }
            row
        });
        assert_eq!(p.max_row_len(), 5);
        let c = columns(&p);
        // The optimum, 5 ((i + 2j) mod 5); greedy in natural or largest-first order takes 7.
        assert_eq!(c.count, 5);
        assert_eq!(rows(&p).count, 5);
    }

    #[test]
    fn arrowhead_columns_take_two_colours() {
        let n = 100;
        // Rows i < n − 1: {i, n − 1}.
        let p = pattern(n - 1, n, |i| vec![i, n - 1]);
        assert_eq!(columns(&p).count, 2);
        assert_eq!(rows(&p).count, n - 1);
    }
}

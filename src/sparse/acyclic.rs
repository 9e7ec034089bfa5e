//! Acyclic colouring, with recovery by substitution.
//!
//! An acyclic colouring is a proper colouring in which every pair of colours induces a
//! forest: it may use fewer colours than a star colouring (one product per colour), but an
//! entry can then be the sum of several unknowns in every cell it appears in. On a forest
//! the sums can be peeled from the leaves inward: a cell with one unknown left gives it, and
//! that entry is then known in its other cell. The peeling order is computed once; each
//! point replays it (one subtraction per already-known entry of the cell).
//!
//! Colouring checks, for each candidate colour, that no two neighbours of the vertex of the
//! same colour already lie in one two-coloured tree; the search walks those trees, so its
//! cost can grow faster than linearly on large meshes. Star colouring stays the default.

use crate::sparse::colouring::{adjacency, Colouring, Substitution, UNCOLOURED};
use crate::sparse::pattern::SparsityPattern;

/// Greedy acyclic colouring of `pattern` in natural order, with its substitution order.
pub(crate) fn acyclic(pattern: &SparsityPattern) -> Colouring {
    let n = pattern.dim();
    let (off, adj, _) = adjacency(pattern);
    let mut colour = vec![UNCOLOURED; n];
    let mut forbidden: Vec<u32> = Vec::new();
    let mut visited = vec![0u32; n];
    let mut stamp = 0u32;
    let mut group: Vec<(u32, u32)> = Vec::new();
    let mut queue: Vec<u32> = Vec::new();
    let mut used = 0usize;
    for v in 0..n {
        let nbrs = &adj[off[v]..off[v + 1]];
        for &w in nbrs {
            let cw = colour[w as usize];
            if cw != UNCOLOURED {
                forbidden[cw as usize] = v as u32;
            }
        }
        // Coloured neighbours grouped by colour.
        group.clear();
        group.extend(
            nbrs.iter()
                .filter(|&&w| colour[w as usize] != UNCOLOURED)
                .map(|&w| (colour[w as usize], w)),
        );
        group.sort_unstable();
        let mut c = 0usize;
        loop {
            if c < forbidden.len() && forbidden[c] == v as u32 {
                c += 1;
                continue;
            }
            if !closes_cycle(
                c as u32,
                &group,
                &colour,
                &off,
                &adj,
                &mut visited,
                &mut stamp,
                &mut queue,
            ) {
                break;
            }
            c += 1;
        }
        if c >= forbidden.len() {
            forbidden.resize(c + 1, UNCOLOURED);
        }
        colour[v] = c as u32;
        used = used.max(c + 1);
    }
    let (sources, substitution) = peel(pattern, &colour);
    Colouring {
        colours: colour,
        count: used,
        sources,
        substitution: Some(substitution),
    }
}

/// True if giving the vertex colour `c` would close a two-coloured cycle: two of its
/// neighbours of one colour `d` already in the same `{c, d}` tree.
#[allow(clippy::too_many_arguments)]
fn closes_cycle(
    c: u32,
    group: &[(u32, u32)],
    colour: &[u32],
    off: &[usize],
    adj: &[u32],
    visited: &mut [u32],
    stamp: &mut u32,
    queue: &mut Vec<u32>,
) -> bool {
    for same in group.chunk_by(|a, b| a.0 == b.0) {
        if same.len() < 2 {
            continue;
        }
        let d = same[0].0;
        *stamp += 1;
        let s = *stamp;
        // Mark the members; a walk from one that reaches another closes a cycle.
        const MEMBER: u32 = u32::MAX;
        for &(_, w) in same {
            visited[w as usize] = MEMBER;
        }
        for &(_, start) in same {
            if visited[start as usize] == s {
                continue;
            }
            queue.clear();
            queue.push(start);
            visited[start as usize] = s;
            while let Some(x) = queue.pop() {
                for &y in &adj[off[x as usize]..off[x as usize + 1]] {
                    let cy = colour[y as usize];
                    if cy != c && cy != d {
                        continue;
                    }
                    match visited[y as usize] {
                        MEMBER => {
                            for &(_, w) in same {
                                visited[w as usize] = 0;
                            }
                            return true;
                        }
                        v if v == s => {}
                        _ => {
                            visited[y as usize] = s;
                            queue.push(y);
                        }
                    }
                }
            }
        }
        for &(_, w) in same {
            if visited[w as usize] == MEMBER {
                visited[w as usize] = 0;
            }
        }
    }
    false
}

/// The cells each entry is read from and the order to solve them in: peel cells with one
/// unknown entry left.
fn peel(pattern: &SparsityPattern, colour: &[u32]) -> (Vec<usize>, Substitution) {
    let n = pattern.dim();
    let (rows, cols) = (pattern.rows(), pattern.cols());
    let nnz = rows.len();
    let mut sources = vec![0usize; nnz];
    let mut order = Vec::with_capacity(nnz);
    let mut bounds = Vec::with_capacity(nnz);
    let mut subs = Vec::new();
    // Every off-diagonal entry appears in two cells: (row r, colour of c) and (c, colour of r).
    let mut cells: Vec<(usize, u32)> = Vec::new();
    for (k, (&r, &c)) in rows.iter().zip(cols).enumerate() {
        if r == c {
            sources[k] = colour[r] as usize * n + r;
            order.push(k as u32);
            bounds.push((0, 0));
        } else {
            cells.push((colour[c] as usize * n + r, k as u32));
            cells.push((colour[r] as usize * n + c, k as u32));
        }
    }
    cells.sort_unstable();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut member = vec![[0u32; 2]; nnz];
    let mut filled = vec![0u8; nnz];
    for (i, &(cell, k)) in cells.iter().enumerate() {
        if i == 0 || cells[i - 1].0 != cell {
            groups.push((i, i));
        }
        let g = groups.len() - 1;
        groups[g].1 = i + 1;
        member[k as usize][filled[k as usize] as usize] = g as u32;
        filled[k as usize] += 1;
    }
    let mut unknown: Vec<usize> = groups.iter().map(|&(a, b)| b - a).collect();
    let mut known = vec![false; nnz];
    // First in, first out, and of an entry's two cells the one with fewer terms: an entry
    // alone in a cell is read directly, and no entry is taken as a long difference (the
    // hub of an arrowhead) when a short one gives it, which would lose precision.
    let mut queue: Vec<usize> = (0..groups.len()).filter(|&g| unknown[g] == 1).collect();
    let mut head = 0;
    while head < queue.len() {
        let mut g = queue[head];
        head += 1;
        if unknown[g] != 1 {
            continue;
        }
        let (a, b) = groups[g];
        let k = cells[a..b]
            .iter()
            .map(|&(_, k)| k as usize)
            .find(|&k| !known[k])
            .expect("one unknown left");
        let size = |g: usize| groups[g].1 - groups[g].0;
        for &other in &member[k] {
            let other = other as usize;
            if other != g && unknown[other] == 1 && size(other) < size(g) {
                g = other;
            }
        }
        let (a, b) = groups[g];
        sources[k] = cells[a].0;
        let start = subs.len() as u32;
        subs.extend(
            cells[a..b]
                .iter()
                .map(|&(_, j)| j)
                .filter(|&j| j as usize != k),
        );
        order.push(k as u32);
        bounds.push((start, subs.len() as u32));
        known[k] = true;
        for &other in &member[k] {
            let other = other as usize;
            unknown[other] -= 1;
            if unknown[other] == 1 {
                queue.push(other);
            }
        }
    }
    assert_eq!(
        order.len(),
        nnz,
        "acyclic colouring: a two-coloured cycle was left (a bug in mixad)"
    );
    (
        sources,
        Substitution {
            order,
            bounds,
            subs,
        },
    )
}

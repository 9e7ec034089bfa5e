//! Symmetric colouring of a Hessian pattern, and where each entry is read back from.
//!
//! Columns of the same colour are summed into one Hessian-vector product `H·s_c` (`s_c` the
//! indicator of colour `c`). A colouring allows *direct recovery* when every entry `h_ij`
//! can be read off one product: `(H·s_{c(j)})_i = h_ij` when `j` is the only neighbour of `i`
//! with colour `c(j)` (the entry is *recovered at `i`*), or symmetrically at `j`. Such
//! colourings are exactly the star colourings (Coleman and Moré, 1984).
//!
//! The greedy algorithm here colours vertices in order and commits every edge, as soon as
//! both ends are coloured, to the end it will be recovered at; the commitment *locks* the
//! other end's colour at that vertex, so no later neighbour may take it. Checking a vertex
//! costs its degree plus the locks of its neighbours, and only the neighbourhoods of
//! neighbours whose colour occurs twice around it, so a hub (an arrowhead's last row) costs
//! its degree once rather than once per leaf.

use crate::sparse::pattern::SparsityPattern;

pub(crate) const UNCOLOURED: u32 = u32::MAX;

/// A star colouring and, per stored entry of the pattern, where its value is read from.
#[derive(Clone, Debug)]
pub(crate) struct Colouring {
    /// Colour of each variable.
    pub(crate) colours: Vec<u32>,
    /// Number of colours.
    pub(crate) count: usize,
    /// Per stored entry: index into the compressed products, laid out column-major
    /// (`colour · n + row`).
    pub(crate) sources: Vec<usize>,
    /// `None`: every entry is its source (direct recovery); else the order to solve them in.
    pub(crate) substitution: Option<Substitution>,
}

/// Recovery by substitution: entry `order[p]` is its source minus the entries
/// `subs[bounds[p].0..bounds[p].1]`, all solved earlier in the order.
#[derive(Clone, Debug)]
pub(crate) struct Substitution {
    pub(crate) order: Vec<u32>,
    pub(crate) bounds: Vec<(u32, u32)>,
    pub(crate) subs: Vec<u32>,
}

impl Colouring {
    /// Fills `values` (one per stored entry) from the compressed products.
    pub(crate) fn recover(&self, compressed: &[f64], values: &mut Vec<f64>) {
        values.clear();
        match &self.substitution {
            None => values.extend(self.sources.iter().map(|&s| compressed[s])),
            Some(sub) => {
                values.resize(self.sources.len(), 0.0);
                for (&k, &(a, b)) in sub.order.iter().zip(&sub.bounds) {
                    let known: f64 = sub.subs[a as usize..b as usize]
                        .iter()
                        .map(|&j| values[j as usize])
                        .sum();
                    values[k as usize] = compressed[self.sources[k as usize]] - known;
                }
            }
        }
    }
}

/// Symmetric adjacency of `pattern` without the diagonal, in compressed form: vertex `v`'s
/// neighbours are `adj[off[v]..off[v + 1]]`, and `entry` gives each slot's stored entry.
pub(crate) fn adjacency(pattern: &SparsityPattern) -> (Vec<usize>, Vec<u32>, Vec<u32>) {
    let n = pattern.dim();
    let (rows, cols) = (pattern.rows(), pattern.cols());
    let mut off = vec![0usize; n + 1];
    for (&r, &c) in rows.iter().zip(cols) {
        if r != c {
            off[r + 1] += 1;
            off[c + 1] += 1;
        }
    }
    for v in 0..n {
        off[v + 1] += off[v];
    }
    let mut fill = off.clone();
    let mut adj = vec![0u32; off[n]];
    let mut entry = vec![0u32; off[n]];
    for (k, (&r, &c)) in rows.iter().zip(cols).enumerate() {
        if r != c {
            for (a, b) in [(r, c), (c, r)] {
                adj[fill[a]] = b as u32;
                entry[fill[a]] = k as u32;
                fill[a] += 1;
            }
        }
    }
    (off, adj, entry)
}

/// Greedy star colouring of `pattern` in natural order.
pub(crate) fn star(pattern: &SparsityPattern) -> Colouring {
    let n = pattern.dim();
    let (rows, cols) = (pattern.rows(), pattern.cols());
    let (off, adj, entry) = adjacency(pattern);
    let mut colour = vec![UNCOLOURED; n];
    // Locked colours of each vertex, at most one per incident edge: `off[v]..off[v] + locks[v]`.
    let mut locked = vec![0u32; off[n]];
    let mut locks = vec![0usize; n];
    // Per stored entry, the vertex it is recovered at.
    let mut side: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    // Stamps per colour: forbidden for the vertex being coloured; count among its neighbours.
    let mut forbidden: Vec<u32> = Vec::new();
    let mut seen: Vec<u32> = Vec::new();
    let mut count: Vec<u32> = Vec::new();
    let mut used = 0usize;

    for v in 0..n {
        let stamp = v as u32;
        let nbrs = off[v]..off[v + 1];
        // How often each colour occurs among v's coloured neighbours.
        for &w in &adj[nbrs.clone()] {
            let cw = colour[w as usize];
            if cw != UNCOLOURED {
                let cw = cw as usize;
                if seen[cw] != stamp {
                    seen[cw] = stamp;
                    count[cw] = 0;
                }
                count[cw] += 1;
            }
        }
        for &w in &adj[nbrs.clone()] {
            let w = w as usize;
            let cw = colour[w];
            if cw != UNCOLOURED {
                forbidden[cw as usize] = stamp;
                if count[cw as usize] > 1 {
                    // The edge (v, w) will be recovered at w: v's colour must be unique
                    // among w's neighbours.
                    for &x in &adj[off[w]..off[w + 1]] {
                        let cx = colour[x as usize];
                        if x as usize != v && cx != UNCOLOURED {
                            forbidden[cx as usize] = stamp;
                        }
                    }
                }
            }
            for &c in &locked[off[w]..off[w] + locks[w]] {
                forbidden[c as usize] = stamp;
            }
        }
        let c = (0..)
            .find(|&c| c >= forbidden.len() || forbidden[c] != stamp)
            .expect("some colour is free");
        if c == forbidden.len() {
            forbidden.push(UNCOLOURED);
            seen.push(UNCOLOURED);
            count.push(0);
        }
        colour[v] = c as u32;
        used = used.max(c + 1);
        // Commit each edge to a coloured neighbour.
        for slot in nbrs {
            let w = adj[slot] as usize;
            let cw = colour[w];
            if w == v || cw == UNCOLOURED || seen[cw as usize] != stamp {
                continue;
            }
            let k = entry[slot] as usize;
            if count[cw as usize] == 1 {
                side[k] = v as u32;
                locked[off[v] + locks[v]] = cw;
                locks[v] += 1;
            } else {
                side[k] = w as u32;
                locked[off[w] + locks[w]] = c as u32;
                locks[w] += 1;
            }
        }
    }

    let sources = rows
        .iter()
        .zip(cols)
        .zip(&side)
        .map(|((&r, &c), &s)| {
            let s = s as usize;
            let t = if s == r { c } else { r };
            colour[t] as usize * n + s
        })
        .collect();
    Colouring {
        colours: colour,
        count: used,
        sources,
        substitution: None,
    }
}

/// True if every stored entry of `pattern` is the only contribution to its source:
/// a check of [`star`]'s result, for tests and debug builds.
pub(crate) fn recovers_directly(pattern: &SparsityPattern, colouring: &Colouring) -> bool {
    let n = pattern.dim();
    // Which (row, colour) cells receive more than one entry of the full symmetric matrix.
    let mut cells = std::collections::HashMap::<usize, u32>::new();
    for (&r, &c) in pattern.rows().iter().zip(pattern.cols()) {
        *cells
            .entry(colouring.colours[c] as usize * n + r)
            .or_default() += 1;
        if r != c {
            *cells
                .entry(colouring.colours[r] as usize * n + c)
                .or_default() += 1;
        }
    }
    colouring.sources.iter().all(|s| cells.get(s) == Some(&1))
}

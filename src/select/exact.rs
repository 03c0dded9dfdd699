//! The exact search over the core: a minknap-style dynamic programme over (weight, value)
//! states that grows outwards from the break item, with bound pruning and a persistent log of
//! decisions for reconstruction.
//!
//! Invariant: every live state is undominated (the list is sorted by weight with strictly
//! increasing value) and its bound is above the incumbent; every pruned state's bound, and
//! every fixed item's, is at most the incumbent, so an empty list proves the incumbent optimal.
//! The search keeps the largest of those bounds (`fathomed`): with the incumbent's value it is
//! the certificate it reports, computed rather than taken to equal the incumbent.

use std::time::Instant;

use super::bound::Item;

/// The empty decision log: the break solution itself.
pub(crate) const NIL: u32 = u32::MAX;

/// Items sorted per expansion step at least; later steps double the sorted core.
const MIN_CHUNK: usize = 64;
/// Arena size below which no garbage collection runs.
const GC_MIN_NODES: usize = 1 << 20;
/// Live decision-log nodes at which the search gives up (8 bytes each: 2 GiB).
const MAX_NODES: usize = 1 << 28;

/// A persistent log of decisions: each node toggles one row relative to the break solution and
/// points to the rest of its state's log. States share tails, so a new state costs one node.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    /// `[row, parent]`; a parent always has a smaller index than its children.
    nodes: Vec<[u32; 2]>,
}

impl Arena {
    /// Appends a node that toggles `row` after the log `parent`.
    pub fn push(&mut self, row: u32, parent: u32) -> u32 {
        let node =
            u32::try_from(self.nodes.len()).expect("MAX_NODES keeps node ids below u32::MAX");
        self.nodes.push([row, parent]);
        node
    }

    /// The rows toggled by the log ending at `node`.
    pub fn rows(&self, mut node: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::from_fn(move || {
            (node != NIL).then(|| {
                let [row, parent] = self.nodes[node as usize];
                node = parent;
                row
            })
        })
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Drops every node that no state and not the incumbent can reach, renumbering the rest.
    /// Cost: O(arena) time and one `u32` per node of scratch.
    fn compact(&mut self, states: &mut [State], best: &mut u32) {
        let mut remap = vec![NIL; self.nodes.len()];
        let roots = states.iter().map(|s| s.node).chain(std::iter::once(*best));
        for root in roots {
            let mut node = root;
            while node != NIL && remap[node as usize] == NIL {
                remap[node as usize] = 0;
                node = self.nodes[node as usize][1];
            }
        }
        let mut kept = 0u32;
        for i in 0..self.nodes.len() {
            if remap[i] != NIL {
                let [row, parent] = self.nodes[i];
                let parent = if parent == NIL {
                    NIL
                } else {
                    remap[parent as usize]
                };
                self.nodes[kept as usize] = [row, parent];
                remap[i] = kept;
                kept += 1;
            }
        }
        self.nodes.truncate(kept as usize);
        let renumber = |n: u32| if n == NIL { NIL } else { remap[n as usize] };
        for state in states {
            state.node = renumber(state.node);
        }
        *best = renumber(*best);
    }
}

/// One partial solution: all fixed-in items, the unprocessed items of the break solution and
/// the decisions made on processed core items.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    /// Total cost, in resource units.
    pub w: u64,
    /// Total value (f64 sum of f32 values).
    pub p: f64,
    /// Number of core items taken (for the cardinality bound).
    pub k: u32,
    /// Decision log relative to the break solution.
    pub node: u32,
}

/// The surrogate cardinality bound: the Lagrangian with multiplier `lambda` on capacity and
/// `mu` on the valid inequality "at most `k_max` core items fit".
#[derive(Debug, Clone, Copy)]
pub(crate) struct CardBound {
    /// Multiplier on the capacity constraint.
    pub lambda: f64,
    /// Multiplier on the cardinality constraint, >= 0.
    pub mu: f64,
    /// Most core items any feasible solution can hold.
    pub k_max: u32,
    /// The bound at the root.
    pub root: f64,
    /// Sum of the unprocessed core items' positive Lagrangian terms.
    pub rest: f64,
}

impl CardBound {
    /// The item's Lagrangian term `p - lambda w - mu`.
    #[inline]
    pub fn term(&self, item: &Item) -> f64 {
        f64::from(item.p) - self.lambda * item.w as f64 - self.mu
    }
}

/// How bounds are compared with the incumbent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pruner {
    /// Every candidate's value is a whole number and every sum of them is exact in f64
    /// (< 2^53), so a completion is worth `offset` plus a whole number: at most
    /// `offset + floor(bound - offset)`.
    pub integral: bool,
    /// The zero-cost rows' value, part of every solution and of every bound, whole or not.
    pub offset: f64,
}

impl Pruner {
    /// Slack for the rounding of a bound computed in f64 (relative 1e-11).
    #[inline]
    fn slack(z: f64) -> f64 {
        1e-11 * z.abs().max(1.0)
    }

    /// Whether nothing under a bound of `ub` can beat the incumbent `z`. With integral values
    /// the incumbent and any completion differ by a whole number, so one must gain at least 1.
    #[inline]
    pub fn pruned(self, ub: f64, z: f64) -> bool {
        if self.integral {
            ub < z + 1.0 - Self::slack(z)
        } else {
            ub <= z
        }
    }

    /// The upper bound certified by `ub`: its part above the zero-cost rows' value floored
    /// when the candidates' values are integral.
    pub fn certify(self, ub: f64, z: f64) -> f64 {
        if self.integral {
            (ub - self.offset + Self::slack(z)).floor() + self.offset
        } else {
            ub
        }
    }
}

/// The fixed parameters of one search.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// Capacity in resource units.
    pub capacity: u64,
    /// The root multiplier (the break ratio).
    pub lambda: f64,
    /// The root Dantzig bound.
    pub root_bound: f64,
    /// Comparison of bounds with the incumbent.
    pub pruner: Pruner,
    /// Stop when this instant passes.
    pub deadline: Option<Instant>,
    /// Stop when the job's token says so.
    pub cancel: crate::cancel::Cancel,
    /// Stop when a stage holds more states than this.
    pub max_states: usize,
    /// The largest bound of the items the root reduction fixed (`-inf` when none).
    pub fathomed: f64,
}

/// What the search ended with.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Its decision log.
    pub node: u32,
    /// A certified upper bound on the optimum.
    pub bound: f64,
    /// Why the search stopped early, when it did.
    pub stopped_by: Option<super::StopReason>,
    /// Core items processed (not counting those fixed on the way).
    pub processed: usize,
    /// States generated over all stages.
    pub states: u64,
    /// Largest state list held.
    pub max_states: usize,
}

/// One side of the core: items processed in order of increasing distance from the break.
struct Side {
    items: Vec<Item>,
    /// `items[..sorted]` is in processing order and comes before everything after it.
    sorted: usize,
    /// Next item to process.
    next: usize,
    /// Whether the items were in the break solution (left of it).
    in_break: bool,
}

impl Side {
    fn new(items: Vec<Item>, in_break: bool) -> Self {
        Side {
            items,
            sorted: 0,
            next: 0,
            in_break,
        }
    }

    /// Left of the break the nearest item has the lowest ratio, right of it the highest.
    fn order(&self, a: &Item, b: &Item) -> std::cmp::Ordering {
        if self.in_break {
            a.ratio().total_cmp(&b.ratio())
        } else {
            b.ratio().total_cmp(&a.ratio())
        }
    }

    /// The next unprocessed item, sorting another chunk of the core when needed:
    /// select the `m` nearest of the rest (O(rest)), then sort them (O(m log m)).
    fn peek(&mut self) -> Option<Item> {
        if self.next == self.sorted && self.sorted < self.items.len() {
            let mut rest = std::mem::take(&mut self.items);
            let tail = &mut rest[self.sorted..];
            let m = self.sorted.max(MIN_CHUNK).min(tail.len());
            if m < tail.len() {
                tail.select_nth_unstable_by(m - 1, |a, b| self.order(a, b));
            }
            tail[..m].sort_unstable_by(|a, b| self.order(a, b));
            self.items = rest;
            self.sorted += m;
        }
        self.items.get(self.next).copied()
    }
}

/// The search in progress.
struct Dp<'a> {
    search: &'a Search,
    card: Option<CardBound>,
    left: Side,
    right: Side,
    states: Vec<State>,
    scratch: Vec<State>,
    arena: &'a mut Arena,
    z: f64,
    best: u32,
    /// The largest bound of every state pruned and every item fixed so far.
    fathomed: f64,
    processed: usize,
    generated: u64,
    max_states: usize,
}

/// Solves the core exactly (or until a limit), starting from the break solution `start` and
/// the incumbent (`value`, `node`).
///
/// `left` holds the core items of the break solution, `right` the others; items fixed by
/// reduction are already folded into `start`. Cost per stage: O(states); the state list is
/// bounded by `search.max_states`, the decision log by garbage collection.
pub(crate) fn solve_core(
    left: Vec<Item>,
    right: Vec<Item>,
    start: State,
    incumbent: (f64, u32),
    search: &Search,
    card: Option<CardBound>,
    arena: &mut Arena,
) -> Outcome {
    let mut dp = Dp {
        search,
        card,
        left: Side::new(left, true),
        right: Side::new(right, false),
        states: vec![start],
        scratch: Vec::new(),
        arena,
        z: incumbent.0,
        best: incumbent.1,
        fathomed: search.fathomed,
        processed: 0,
        generated: 1,
        max_states: 1,
    };
    let mut gc_at = GC_MIN_NODES;
    let stopped_by = loop {
        let root = dp
            .card
            .map_or(search.root_bound, |c| c.root.min(search.root_bound));
        if search.pruner.pruned(root, dp.z) {
            dp.fathomed = dp.fathomed.max(root);
            break None;
        }
        if dp.states.is_empty() {
            break None;
        }
        let next_right = dp.advance(false);
        let next_left = dp.advance(true);
        if next_right.is_none() && next_left.is_none() {
            break None;
        }
        if dp.states.len() > search.max_states {
            break Some(super::StopReason::StateLimit);
        }
        if search.deadline.is_some_and(|d| Instant::now() >= d) || search.cancel.is_stopped() {
            break Some(super::StopReason::TimeLimit);
        }
        if next_right.is_some() {
            dp.stage(false);
        }
        if dp.advance(true).is_some() {
            dp.stage(true);
        }
        if dp.arena.len() > gc_at {
            dp.arena.compact(&mut dp.states, &mut dp.best);
            if dp.arena.len() > MAX_NODES {
                break Some(super::StopReason::StateLimit);
            }
            gc_at = (2 * dp.arena.len()).max(GC_MIN_NODES);
        }
    };
    // Proven: every solution is the incumbent or lies under a fathomed bound (a completion of
    // a pruned or dominated state, or a flip of a fixed item); the states left at the end are
    // complete and none beats the incumbent.
    let bound = match stopped_by {
        None => search.pruner.certify(dp.fathomed, dp.z).max(dp.z),
        Some(_) => dp.open_bound(),
    };
    Outcome {
        node: dp.best,
        bound,
        stopped_by,
        processed: dp.processed,
        states: dp.generated,
        max_states: dp.max_states,
    }
}

impl Dp<'_> {
    fn side(&mut self, in_break: bool) -> &mut Side {
        if in_break {
            &mut self.left
        } else {
            &mut self.right
        }
    }

    /// Skips the items that reduction against the current incumbent fixes, and returns the
    /// next item to process on that side.
    fn advance(&mut self, in_break: bool) -> Option<Item> {
        loop {
            let item = self.side(in_break).peek()?;
            if !self.fixed(&item, in_break) {
                return Some(item);
            }
            self.leave(&item, in_break);
        }
    }

    /// Whether forcing `item` away from its break-solution value provably cannot beat `z`;
    /// when it cannot, its bound joins the fathomed ones.
    fn fixed(&mut self, item: &Item, in_break: bool) -> bool {
        let towards = |t: f64| if in_break { t.max(0.0) } else { (-t).max(0.0) };
        let pruner = self.search.pruner;
        let dantzig = self.search.root_bound - towards(item.reduced(self.search.lambda));
        let bound = match &self.card {
            Some(c) => dantzig.min(c.root - towards(c.term(item))),
            None => dantzig,
        };
        let fixed = pruner.pruned(bound, self.z);
        if fixed {
            self.fathomed = self.fathomed.max(bound);
        }
        fixed
    }

    /// Removes `item` from the unprocessed set (it was processed or fixed).
    fn leave(&mut self, item: &Item, in_break: bool) {
        if let Some(card) = &mut self.card {
            let t = card.term(item);
            let gone = if in_break { (-t).max(0.0) } else { t.max(0.0) };
            card.rest = (card.rest - gone).max(0.0);
        }
        self.side(in_break).next += 1;
    }

    /// The multipliers valid for every state now: any lambda between the next item's ratio
    /// on the right (0 when none is left) and on the left (none: infeasible states are dead).
    fn multipliers(&mut self) -> (f64, Option<f64>) {
        let right = self.advance(false).map_or(0.0, |i| i.ratio());
        let left = self.advance(true).map(|i| i.ratio());
        (right, left)
    }

    /// Dembo-Hammer bound (and the cardinality bound when enabled) of one state.
    #[inline]
    fn bound(&self, s: &State, right: f64, left: Option<f64>) -> f64 {
        let cap = self.search.capacity;
        let dantzig = if s.w <= cap {
            s.p + right * (cap - s.w) as f64
        } else {
            match left {
                Some(l) => s.p - l * (s.w - cap) as f64,
                None => f64::NEG_INFINITY,
            }
        };
        match &self.card {
            Some(c) => dantzig.min(
                s.p + c.lambda * (cap as f64 - s.w as f64)
                    + c.mu * (f64::from(c.k_max) - f64::from(s.k))
                    + c.rest,
            ),
            None => dantzig,
        }
    }

    /// Processes the next item on one side: every state either keeps its break-solution
    /// decision or flips it; the two sorted lists merge with dominance and bound pruning.
    fn stage(&mut self, in_break: bool) {
        let side = self.side(in_break);
        let item = side.items[side.next];
        self.leave(&item, in_break);
        self.processed += 1;
        let (right, left) = self.multipliers();
        let shifted = |s: &State| -> State {
            if in_break {
                State {
                    w: s.w - item.w,
                    p: s.p - f64::from(item.p),
                    k: s.k - 1,
                    node: s.node,
                }
            } else {
                State {
                    w: s.w + item.w,
                    p: s.p + f64::from(item.p),
                    k: s.k + 1,
                    node: s.node,
                }
            }
        };
        let states = std::mem::take(&mut self.states);
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let (n, mut i, mut j) = (states.len(), 0, 0);
        let mut last_p = f64::NEG_INFINITY;
        let pruner = self.search.pruner;
        let cap = self.search.capacity;
        while i < n || j < n {
            let a = states.get(i);
            let b = states.get(j).map(shifted);
            let flip = match (a, &b) {
                (Some(a), Some(b)) => b.w < a.w || (b.w == a.w && b.p > a.p),
                (None, _) => true,
                (_, None) => false,
            };
            let mut s = if flip {
                j += 1;
                b.expect("flip is chosen only while shifted states remain")
            } else {
                i += 1;
                *a.expect("keep is chosen only while kept states remain")
            };
            if s.p <= last_p {
                continue;
            }
            last_p = s.p;
            let bound = self.bound(&s, right, left);
            if pruner.pruned(bound, self.z) {
                self.fathomed = self.fathomed.max(bound);
                continue;
            }
            if flip {
                s.node = self.arena.push(item.row, s.node);
            }
            if s.w <= cap && s.p > self.z {
                self.z = s.p;
                self.best = s.node;
            }
            out.push(s);
        }
        self.generated += out.len() as u64;
        self.max_states = self.max_states.max(out.len());
        self.scratch = states;
        self.states = out;
    }

    /// The certified bound when the search stops early: the best open state's bound (or a
    /// fathomed one, or the incumbent), never above the root bound.
    fn open_bound(&mut self) -> f64 {
        let (right, left) = self.multipliers();
        let pruner = self.search.pruner;
        let open = self
            .states
            .iter()
            .map(|s| pruner.certify(self.bound(s, right, left), self.z))
            .fold(pruner.certify(self.fathomed, self.z).max(self.z), f64::max);
        let root = self.card.map_or(self.search.root_bound, |c| {
            c.root.min(self.search.root_bound)
        });
        open.min(pruner.certify(root, self.z)).max(self.z)
    }
}

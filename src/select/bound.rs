//! The linear-time root of the solver: the break item by weighted selection, the Dantzig bound
//! in its Lagrangian form, and the greedy and one-swap lower bounds.
//!
//! Invariant after [`split_at_capacity`]: every item before the break has a ratio >= the
//! break item's, every item after it a ratio <= it, and the items before it fit the capacity.

/// One candidate: positive value, cost in `1..=capacity`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    /// Cost in integer resource units, >= 1.
    pub w: u64,
    /// Value (CRV), > 0 and finite.
    pub p: f32,
    /// The item's row in the caller's columns.
    pub row: u32,
}

impl Item {
    /// Value per resource unit, the order of the LP relaxation.
    #[inline]
    pub fn ratio(&self) -> f64 {
        f64::from(self.p) / self.w as f64
    }

    /// Reduced profit `p - lambda * w` under the Lagrange multiplier `lambda`.
    #[inline]
    pub fn reduced(&self, lambda: f64) -> f64 {
        f64::from(self.p) - lambda * self.w as f64
    }
}

/// Where a prefix of the items, in decreasing key order, stops fitting a capacity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split {
    /// Items `[..index]` fit; item `index` does not fit on top of them.
    pub index: usize,
    /// Total weight of items `[..index]`.
    pub weight_before: u128,
}

/// Items sorted outright below this length.
const SMALL_RANGE: usize = 24;
/// Items sampled per round to place the two pivots.
const SAMPLE: usize = 512;

/// Rearranges `items` so that a prefix of largest keys is exactly what fits `capacity`.
///
/// Algorithm: Floyd-Rivest style weighted selection. Each round samples the range, puts two
/// pivots around the sample's estimate of the break key and partitions three ways
/// (above, between, below); the break lies in one part, usually the thin middle one. Equal keys
/// are kept together, so ranges of ties (subset-sum) end in one scan.
/// Cost: expected O(n) key evaluations, no allocation beyond the sample.
/// Returns `None` when everything fits.
///
/// `hint` may name a range that every item before it precedes in key order (and every item
/// after it follows) together with the weight before it; it is used when the break provably
/// lies inside it, which saves the first partition rounds.
pub(crate) fn split_at_capacity<T>(
    items: &mut [T],
    capacity: u64,
    key: impl Fn(&T) -> f64,
    weight: impl Fn(&T) -> u64,
    hint: Option<(std::ops::Range<usize>, u128)>,
) -> Option<Split> {
    let cap = u128::from(capacity);
    let (mut lo, mut hi, mut acc) = (0usize, items.len(), 0u128);
    if let Some((range, before)) = hint {
        let inside: u128 = items[range.clone()]
            .iter()
            .map(|t| u128::from(weight(t)))
            .sum();
        if before <= cap && cap < before + inside {
            (lo, hi, acc) = (range.start, range.end, before);
        }
    }
    let mut stalled = false;
    loop {
        if hi - lo <= SMALL_RANGE {
            items[lo..hi].sort_unstable_by(|a, b| key(b).total_cmp(&key(a)));
            return scan(items, lo, hi, acc, cap, &weight);
        }
        let (p_hi, p_lo) = pivots(&items[lo..hi], cap - acc, &key, &weight, stalled);
        let (mut a, mut i, mut c) = (lo, lo, hi);
        let (mut w_above, mut w_band) = (0u128, 0u128);
        while i < c {
            let k = key(&items[i]);
            if k > p_hi {
                w_above += u128::from(weight(&items[i]));
                items.swap(a, i);
                a += 1;
                i += 1;
            } else if k < p_lo {
                c -= 1;
                items.swap(i, c);
            } else {
                w_band += u128::from(weight(&items[i]));
                i += 1;
            }
        }
        let before = hi - lo;
        if acc + w_above > cap {
            hi = a;
        } else if acc + w_above + w_band > cap {
            acc += w_above;
            if p_hi == p_lo {
                return scan(items, a, c, acc, cap, &weight);
            }
            (lo, hi) = (a, c);
        } else if c == hi {
            // Everything fits: only possible on the first round.
            return None;
        } else {
            acc += w_above + w_band;
            lo = c;
        }
        stalled = hi - lo == before;
    }
}

/// Finds the break by scanning `[lo, hi)` in order; every item there is in key order already.
fn scan<T>(
    items: &[T],
    lo: usize,
    hi: usize,
    mut acc: u128,
    cap: u128,
    weight: &impl Fn(&T) -> u64,
) -> Option<Split> {
    for (i, item) in items.iter().enumerate().take(hi).skip(lo) {
        let w = u128::from(weight(item));
        if acc + w > cap {
            return Some(Split {
                index: i,
                weight_before: acc,
            });
        }
        acc += w;
    }
    None
}

/// Two pivot keys around the sample's estimate of the break key (one key when `stalled`).
fn pivots<T>(
    range: &[T],
    room: u128,
    key: &impl Fn(&T) -> f64,
    weight: &impl Fn(&T) -> u64,
    stalled: bool,
) -> (f64, f64) {
    let step = (range.len() / SAMPLE).max(1);
    let mut sample: Vec<(f64, u64)> = range
        .iter()
        .step_by(step)
        .map(|t| (key(t), weight(t)))
        .collect();
    let scale = range.len() as f64 / sample.len() as f64;
    let spread = if stalled {
        0
    } else {
        (sample.len() as f64).sqrt() as usize + 1
    };
    band_around_break(&mut sample, scale, room, spread)
}

/// From a sample of (key, weight) pairs standing for `scale` times as many items, the keys
/// `spread` sample positions above and below the estimated break for capacity `room`.
pub(crate) fn band_around_break(
    sample: &mut [(f64, u64)],
    scale: f64,
    room: u128,
    spread: usize,
) -> (f64, f64) {
    sample.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let mut cumulative = 0.0;
    let mut at = sample.len() - 1;
    for (i, &(_, w)) in sample.iter().enumerate() {
        cumulative += w as f64 * scale;
        if cumulative > room as f64 {
            at = i;
            break;
        }
    }
    let upper = sample[at.saturating_sub(spread)].0;
    let lower = sample[(at + spread).min(sample.len() - 1)].0;
    (upper, lower)
}

/// Neumaier-compensated sum, so the root bound over millions of terms keeps ~1 ulp of error.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    /// Adds one term.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// The compensated total.
    pub fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// The Lagrangian bound `lambda * capacity + sum_i max(0, p_i - lambda * w_i)`, summed item
/// by item so that a pass over the items can fold it in.
///
/// Valid for any `lambda >= 0` whatever the items' order; with `lambda` = the break ratio it is
/// the Dantzig (LP) bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lagrangian {
    lambda: f64,
    sum: Sum,
}

impl Lagrangian {
    /// No item yet, multiplier `lambda`.
    pub fn new(lambda: f64) -> Self {
        Lagrangian {
            lambda,
            sum: Sum::default(),
        }
    }

    /// Adds one item's term.
    #[inline]
    pub fn add(&mut self, item: &Item) {
        let d = item.reduced(self.lambda);
        if d > 0.0 {
            self.sum.add(d);
        }
    }

    /// The bound for `capacity`, once every item was added.
    pub fn bound(mut self, capacity: u64) -> f64 {
        self.sum.add(self.lambda * capacity as f64);
        self.sum.value()
    }
}

/// Greedy completion of the break solution: moves the items after the break that still fit
/// to `[start, start + count)` (scanning in array order, which after the split starts with the
/// ratios nearest the break) and returns `count` and their weight. The scan stops once the room
/// left is below `min_weight`, the lightest item's weight: nothing more can fit.
pub(crate) fn greedy_fill<T>(
    items: &mut [T],
    start: usize,
    room: u64,
    min_weight: u64,
    weight: impl Fn(&T) -> u64,
) -> (usize, u64) {
    let mut left = room;
    let mut count = 0;
    for i in start..items.len() {
        if left < min_weight {
            break;
        }
        let w = weight(&items[i]);
        if w <= left {
            left -= w;
            items.swap(start + count, i);
            count += 1;
        }
    }
    (count, room - left)
}

/// The best single exchange found by [`best_swap`]: drop `out` (if any), take `take`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Swap {
    /// Index of the item that leaves the solution.
    pub out: Option<usize>,
    /// Index of the item that enters it.
    pub take: usize,
    /// Value gained.
    pub gain: f64,
}

/// Items per side that [`best_swap`] samples.
const SWAP_SAMPLE: usize = 1 << 13;

/// Looks for one exchange that improves a solution with `room` units left: the members are
/// `item(i)` for `i` in `members`, the outsiders those in `outsiders`. Both sides are
/// stride-sampled.
///
/// Finds, over the samples, the best `p_in - p_out` with `w_in - w_out <= room` (sorting the
/// outsiders by weight, prefix maxima, binary search): on strongly correlated data this closes
/// the residual capacity exactly. Cost: O(s log s) for s = 8192 samples per side.
pub(crate) fn best_swap(
    item: impl Fn(usize) -> Item,
    members: std::ops::Range<usize>,
    outsiders: std::ops::Range<usize>,
    room: u64,
) -> Option<Swap> {
    if outsiders.is_empty() {
        return None;
    }
    let step = (outsiders.len() / SWAP_SAMPLE).max(1);
    let mut outside: Vec<usize> = outsiders.step_by(step).collect();
    outside.sort_unstable_by_key(|&i| item(i).w);
    // best[j] = the most valuable outsider among outside[..=j].
    let mut best = Vec::with_capacity(outside.len());
    let mut top = outside[0];
    for &i in &outside {
        if item(i).p > item(top).p {
            top = i;
        }
        best.push(top);
    }
    let lightest_within = |limit: u64| -> Option<usize> {
        let n = outside.partition_point(|&i| item(i).w <= limit);
        n.checked_sub(1).map(|j| best[j])
    };
    let mut found = lightest_within(room).map(|take| Swap {
        out: None,
        take,
        gain: f64::from(item(take).p),
    });
    let step = (members.len() / SWAP_SAMPLE).max(1);
    for out in members.step_by(step) {
        let limit = item(out).w.saturating_add(room);
        if let Some(take) = lightest_within(limit) {
            let gain = f64::from(item(take).p) - f64::from(item(out).p);
            if gain > found.map_or(0.0, |s| s.gain) {
                found = Some(Swap {
                    out: Some(out),
                    take,
                    gain,
                });
            }
        }
    }
    found.filter(|s| s.gain > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: f32, w: u64) -> Item {
        Item { w, p, row: 0 }
    }

    fn check_split(items: &mut [Item], capacity: u64) {
        let total: u128 = items.iter().map(|i| u128::from(i.w)).sum();
        let split = split_at_capacity(items, capacity, Item::ratio, |i| i.w, None);
        let Some(split) = split else {
            assert!(total <= u128::from(capacity));
            return;
        };
        let r = items[split.index].ratio();
        assert!(items[..split.index].iter().all(|i| i.ratio() >= r));
        assert!(items[split.index + 1..].iter().all(|i| i.ratio() <= r));
        let before: u128 = items[..split.index].iter().map(|i| u128::from(i.w)).sum();
        assert_eq!(before, split.weight_before);
        assert!(before <= u128::from(capacity));
        assert!(before + u128::from(items[split.index].w) > u128::from(capacity));
    }

    #[test]
    fn the_split_puts_higher_ratios_before_the_break() {
        let mut state = 12345u64;
        for n in [1usize, 5, 30, 1000, 20_000] {
            for ties in [false, true] {
                let mut items: Vec<Item> = (0..n)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let w = 1 + (state >> 40) % 100;
                        let p = if ties {
                            w as f32
                        } else {
                            1.0 + ((state >> 20) % 97) as f32
                        };
                        item(p, w)
                    })
                    .collect();
                let total: u64 = items.iter().map(|i| i.w).sum();
                for capacity in [0, total / 3, total / 2, total - 1, total] {
                    check_split(&mut items, capacity);
                }
            }
        }
    }

    #[test]
    fn the_lagrangian_bound_at_the_break_ratio_is_the_dantzig_bound() {
        let items = [item(10.0, 5), item(6.0, 4), item(3.0, 3)];
        // Dantzig: 10 + 6 (weight 9) + 1/3 of the last = 17 at capacity 10.
        let mut lagrangian = Lagrangian::new(1.0);
        for item in &items {
            lagrangian.add(item);
        }
        let bound = lagrangian.bound(10);
        assert!((bound - 17.0).abs() < 1e-12, "{bound}");
    }

    #[test]
    fn the_best_swap_closes_the_residual_exactly() {
        // Members weigh 5 and 6; outsiders 7 and 9; 2 units left: 5 -> 7 fills them.
        let items = [item(15.0, 5), item(16.0, 6), item(17.0, 7), item(19.0, 9)];
        let swap = best_swap(|i| items[i], 0..2, 2..4, 2).unwrap();
        assert_eq!(swap.take, 2);
        assert_eq!(swap.out, Some(0));
        assert_eq!(swap.gain, 2.0);
    }
}

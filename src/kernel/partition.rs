//! Stable partitions of 64-bit words by a small digit, in parallel: the first step of the tier
//! sort (CRV words into their buckets), the split of a bucket larger than the cache on its next
//! digit, and the hash partition of [`crate::arrow_scores`]'s duplicate-id check; and the
//! parallel placement of values by a permutation ([`permute`]: ranks from the sorted order,
//! CRVs in rank order).
//!
//! The items are cut into consecutive parts; each part counts its digits, then writes its words
//! into its own slice of every digit's range of the output. The slices are digit-major and
//! part-minor (part `p`'s words of digit `d` follow those of parts `0..p`), so the partition is
//! stable and its output does not depend on the number of parts, and no two threads write the
//! same place (no atomics, no locks).

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

/// Splits `words` into consecutive parts of the given lengths (their sum is `words.len()`).
pub(crate) fn split_lengths<'w>(mut words: &'w mut [u64], lengths: &[usize]) -> Vec<&'w mut [u64]> {
    let mut parts = Vec::with_capacity(lengths.len());
    for &length in lengths {
        let (part, rest) = words.split_at_mut(length);
        parts.push(part);
        words = rest;
    }
    parts
}

/// How many of each part of `items` (consecutive, `part_rows` each) have each of the `digits`
/// digits: `counts[part][digit]`.
pub(crate) fn count_parts<T: Sync>(
    items: &[T],
    part_rows: usize,
    digits: usize,
    digit_of: impl Fn(&T) -> usize + Sync,
) -> Vec<Vec<usize>> {
    items
        .par_chunks(part_rows)
        .map(|part| {
            let mut counts = vec![0usize; digits];
            for item in part {
                counts[digit_of(item)] += 1;
            }
            counts
        })
        .collect()
}

/// The words of each digit over all parts, from [`count_parts`]' counts.
pub(crate) fn digit_totals(counts: &[Vec<usize>]) -> Vec<usize> {
    let digits = counts.first().map_or(0, Vec::len);
    (0..digits)
        .map(|digit| counts.iter().map(|counts| counts[digit]).sum())
        .collect()
}

/// Writes `word_of(index, item)` of every item into `to`, grouped by `digit_of(item)` in digit
/// order, in item order within a digit. `counts` are the items' counts per part of
/// `part_rows` and digit ([`count_parts`], or any per-part histogram of the same digits), and
/// `to` holds exactly the items.
pub(crate) fn scatter_parts<T: Sync>(
    items: &[T],
    part_rows: usize,
    counts: &[Vec<usize>],
    digit_of: impl Fn(&T) -> usize + Sync,
    word_of: impl Fn(usize, &T) -> u64 + Sync,
    to: &mut [u64],
) {
    let digits = counts.first().map_or(0, Vec::len);
    let slice_lengths: Vec<usize> = (0..digits)
        .flat_map(|digit| counts.iter().map(move |counts| counts[digit]))
        .collect();
    let mut part_targets: Vec<Vec<&mut [u64]>> = counts.iter().map(|_| Vec::new()).collect();
    for (slice, target) in split_lengths(to, &slice_lengths).into_iter().enumerate() {
        part_targets[slice % counts.len()].push(target);
    }
    items
        .par_chunks(part_rows)
        .zip(part_targets)
        .enumerate()
        .for_each(|(part, (items, mut targets))| {
            for (index, item) in (part * part_rows..).zip(items) {
                let target = &mut targets[digit_of(item)];
                let (first, rest) = std::mem::take(target)
                    .split_first_mut()
                    .expect("targets are sized by the counts of these items");
                *first = word_of(index, item);
                *target = rest;
            }
        });
}

/// `out[position(i)] = value(i)` for every `i` in `0..len`, in parallel chunks of `chunk_rows`;
/// `position` must be a permutation of `0..len` (panics on a position past the end). Every slot
/// is stored exactly once, so relaxed atomics make the parallel random writes safe without
/// ordering cost, and the atomics' vector becomes the answer in place.
pub(crate) fn permute(
    len: usize,
    chunk_rows: usize,
    position: impl Fn(usize) -> usize + Sync,
    value: impl Fn(usize) -> u32 + Sync,
) -> Vec<u32> {
    let out: Vec<AtomicU32> = (0..len)
        .into_par_iter()
        .map(|_| AtomicU32::new(0))
        .collect();
    (0..len)
        .into_par_iter()
        .with_min_len(chunk_rows)
        .for_each(|index| out[position(index)].store(value(index), Ordering::Relaxed));
    out.into_iter().map(AtomicU32::into_inner).collect()
}

/// The rows of each part when `rows` are cut into `parts` (at least one row a part).
pub(crate) fn part_rows(rows: usize, parts: usize) -> usize {
    rows.div_ceil(parts).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_stable_and_the_same_for_every_number_of_parts() {
        let items: Vec<u64> = (0..10_007u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20)
            .collect();
        let digit_of = |item: &u64| (*item % 37) as usize;
        let mut want: Vec<u64> = (0..items.len() as u64).collect();
        want.sort_by_key(|&index| digit_of(&items[index as usize])); // stable
        for parts in [1, 2, 3, 8, 64, 20_000] {
            let rows = part_rows(items.len(), parts);
            let counts = count_parts(&items, rows, 37, digit_of);
            let mut got = vec![0u64; items.len()];
            scatter_parts(
                &items,
                rows,
                &counts,
                digit_of,
                |index, _| index as u64,
                &mut got,
            );
            assert_eq!(got, want, "{parts} parts");
            let totals = digit_totals(&counts);
            assert_eq!(totals.iter().sum::<usize>(), items.len());
            let mut at = 0;
            for (digit, &total) in totals.iter().enumerate() {
                let words = &got[at..at + total];
                assert!(
                    words
                        .iter()
                        .all(|&index| digit_of(&items[index as usize]) == digit)
                );
                at += total;
            }
        }
    }

    #[test]
    fn a_permutation_places_every_value() {
        let len = 10_007;
        let position = |i: usize| (i * 7919) % len; // 7919 is prime to len: a permutation
        for chunk_rows in [1, 64, 20_000] {
            let out = permute(len, chunk_rows, position, |i| i as u32 + 1);
            for i in 0..len {
                assert_eq!(out[position(i)], i as u32 + 1);
            }
        }
        assert!(permute(0, 64, |i| i, |_| 1).is_empty());
    }

    #[test]
    fn nothing_to_partition_is_fine() {
        let counts = count_parts::<u64>(&[], part_rows(0, 4), 16, |_| 0);
        assert!(counts.is_empty());
        assert!(digit_totals(&counts).is_empty());
        scatter_parts::<u64>(&[], 1, &counts, |_| 0, |_, _| 0, &mut []);
    }
}

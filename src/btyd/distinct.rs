//! Rows grouped by their distinct keys: the one compression the purchase fit (the likelihood
//! is summed over distinct (frequency, recency, age) triples, weighted by their counts), the
//! spend fit (over distinct (frequency, mean spend) pairs) and the probabilistic CRV (the model
//! is evaluated once per distinct triple) rest on. A key is N columns of bit patterns of
//! non-negative floats, which order as their values do; keys sort column by column.
//!
//! Method (packed, the usual case): fixed chunks of rows find each column's distinct values in
//! small hash maps, on the rayon pool, each row's indexes among them packed into one word; the
//! chunks' values are merged and sorted per column, and each row's word becomes its columns'
//! ranks packed together, above the row's number when each row's key is wanted. An LSD radix
//! sort over the ranks' bits alone (8 bits a pass, one counting pass for all digits, digits
//! every row shares skipped) puts equal keys together in key order, and the runs are the
//! distinct keys. Cost: N look-ups per row in maps of a chunk's distinct values, ceil(rank
//! bits / 8) passes over a word per row, 16 bytes per row (20 with each row's key). The ranks
//! (and the row number) must fit in 64 bits: when the columns have too many distinct values
//! for that, the hashed path (fixed chunks of rows hash whole keys, the chunks' keys are
//! merged in chunk order and the distinct keys alone sorted: one look-up per row in a map of
//! the chunk's distinct keys) after that first pass. Either way the result is a pure function
//! of the rows, whatever the number of threads.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::History;

/// Rows per chunk of the parallel first passes.
const CHUNK_ROWS: usize = 1 << 18;

/// Bits of a value's index among its chunk's distinct values of one column.
const LOCAL_BITS: u32 = CHUNK_ROWS.trailing_zeros();

/// Bits of one digit of the radix sort.
const DIGIT_BITS: u32 = 8;

/// A hasher for bit patterns of times and counts: FxHash's multiply-rotate per word, finished
/// by MurmurHash3's 64-bit mixer (times in sevenths of a week have periodic low mantissa bits,
/// which a multiply alone leaves in the low bits the table indexes by). Not DoS-resistant; the
/// keys are the user's own data.
#[derive(Default)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Arrays of words (the keys) arrive as their bytes: one word at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// A hash map keyed by bit patterns, with [`MixHasher`].
pub type BitsMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// Rows grouped by their keys of N columns.
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctKeys<const N: usize> {
    /// Each column's distinct values (bit patterns), ascending.
    pub values: [Vec<u64>; N],
    /// The distinct keys, ascending, as each column's index in `values`.
    pub keys: Vec<[u32; N]>,
    /// How many rows have each.
    pub counts: Vec<u64>,
    /// For each row, its key's index in `keys` (empty from [`DistinctKeys::counted`]).
    pub row_key: Vec<u32>,
}

impl<const N: usize> DistinctKeys<N> {
    /// The distinct keys of rows `0..rows`, `key(row)` giving each row's (bit patterns of
    /// non-negative floats, -0.0 already made 0.0).
    ///
    /// # Panics
    ///
    /// If there are 2^32 rows or more.
    pub fn of(rows: usize, key: impl Fn(usize) -> [u64; N] + Sync) -> Self {
        Self::group(rows, &key, true)
    }

    /// [`DistinctKeys::of`] without `row_key`: what a fit needs, 4 bytes per row fewer
    /// written.
    ///
    /// # Panics
    ///
    /// If there are 2^32 rows or more.
    pub fn counted(rows: usize, key: impl Fn(usize) -> [u64; N] + Sync) -> Self {
        Self::group(rows, &key, false)
    }

    fn group(rows: usize, key: &(impl Fn(usize) -> [u64; N] + Sync), index_rows: bool) -> Self {
        assert!(u32::try_from(rows).is_ok(), "fewer than 2^32 rows");
        Self::packed(rows, key, index_rows).unwrap_or_else(|| Self::hashed(rows, key, index_rows))
    }

    /// The packed path (module doc); `None` when the ranks and the row number need more than
    /// 64 bits.
    fn packed(
        rows: usize,
        key: &(impl Fn(usize) -> [u64; N] + Sync),
        index_rows: bool,
    ) -> Option<Self> {
        const {
            assert!(
                N as u32 * LOCAL_BITS <= u64::BITS,
                "a row's local indexes fit a word"
            )
        };
        let mut words = vec![0u64; rows];
        // Each chunk's distinct values per column, in order of first appearance; each row's
        // indexes among them, LOCAL_BITS apiece.
        let chunk_values: Vec<[Vec<u64>; N]> = words
            .par_chunks_mut(CHUNK_ROWS)
            .enumerate()
            .map(|(chunk, out)| {
                let mut index: [BitsMap<u64, u64>; N] = std::array::from_fn(|_| BitsMap::default());
                let mut values: [Vec<u64>; N] = std::array::from_fn(|_| Vec::new());
                for (row, word) in (chunk * CHUNK_ROWS..).zip(out) {
                    let bits = key(row);
                    for c in 0..N {
                        let local = *index[c].entry(bits[c]).or_insert_with(|| {
                            values[c].push(bits[c]);
                            values[c].len() as u64 - 1 // below CHUNK_ROWS
                        });
                        *word |= local << (c as u32 * LOCAL_BITS);
                    }
                }
                values
            })
            .collect();
        let values: [Vec<u64>; N] = std::array::from_fn(|c| {
            let mut all: Vec<u64> = chunk_values
                .iter()
                .flat_map(|v| v[c].iter().copied())
                .collect();
            all.par_sort_unstable();
            all.dedup();
            all
        });
        let rank_bits = values.each_ref().map(|v| bits_for(v.len()));
        let key_bits: u32 = rank_bits.iter().sum();
        // Rows are numbered in the words only when each row's key is wanted.
        let row_bits = if index_rows { bits_for(rows) } else { 0 };
        if key_bits + row_bits > u64::BITS {
            return None;
        }
        // Each row's word: its columns' ranks, then its row number.
        words
            .par_chunks_mut(CHUNK_ROWS)
            .zip(&chunk_values)
            .enumerate()
            .for_each(|(chunk, (out, chunk_values))| {
                let rank: [Vec<u64>; N] = std::array::from_fn(|c| {
                    (chunk_values[c].iter())
                        .map(|v| values[c].binary_search(v).expect("a merged value") as u64)
                        .collect()
                });
                let local_mask = (1 << LOCAL_BITS) - 1;
                let row_mask = (1 << row_bits) - 1;
                for (row, word) in (chunk * CHUNK_ROWS..).zip(out) {
                    let mut packed = 0;
                    for c in 0..N {
                        let local = (*word >> (c as u32 * LOCAL_BITS)) & local_mask;
                        packed = (packed << rank_bits[c]) | rank[c][local as usize];
                    }
                    *word = (packed << row_bits) | (row as u64 & row_mask);
                }
            });
        radix_sort(&mut words, row_bits..row_bits + key_bits);
        let mut keys = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        let mut row_key = if index_rows {
            vec![0u32; rows]
        } else {
            Vec::new()
        };
        let mut previous = None;
        for word in words {
            let packed = word >> row_bits;
            if previous != Some(packed) {
                previous = Some(packed);
                keys.push(unpack(packed, rank_bits));
                counts.push(0);
            }
            *counts.last_mut().expect("a key") += 1;
            if index_rows {
                let row = word & ((1 << row_bits) - 1);
                row_key[row as usize] = keys.len() as u32 - 1; // at most `rows`
            }
        }
        Some(DistinctKeys {
            values,
            keys,
            counts,
            row_key,
        })
    }

    /// The hashed path (module doc).
    fn hashed(rows: usize, key: &(impl Fn(usize) -> [u64; N] + Sync), index_rows: bool) -> Self {
        let chunks: Vec<ChunkKeys<N>> = (0..rows.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .map(|chunk| {
                let start = chunk * CHUNK_ROWS;
                let end = (start + CHUNK_ROWS).min(rows);
                let mut index: BitsMap<[u64; N], u32> = BitsMap::default();
                let mut keys = Vec::new();
                let mut counts = Vec::new();
                let row_key = (start..end)
                    .map(|row| {
                        let key = key(row);
                        let local = *index.entry(key).or_insert_with(|| {
                            keys.push(key);
                            counts.push(0);
                            (keys.len() - 1) as u32 // at most CHUNK_ROWS
                        });
                        counts[local as usize] += 1;
                        local
                    })
                    .collect();
                ChunkKeys {
                    keys,
                    counts,
                    row_key,
                }
            })
            .collect();
        // Merge the chunks' keys in chunk order: each key's index in `keys` (first
        // appearance), and each chunk's local index to that.
        let mut index: BitsMap<[u64; N], u32> = BitsMap::default();
        let mut keys: Vec<[u64; N]> = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        let mut renumbering: Vec<Vec<u32>> = chunks
            .iter()
            .map(|chunk| {
                (chunk.keys.iter().zip(&chunk.counts))
                    .map(|(&key, &count)| {
                        let global = *index.entry(key).or_insert_with(|| {
                            keys.push(key);
                            counts.push(0);
                            (keys.len() - 1) as u32 // at most `rows`
                        });
                        counts[global as usize] += count;
                        global
                    })
                    .collect()
            })
            .collect();
        // Sort: `order` lists the keys' indexes in key order, `rank` is its inverse.
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.par_sort_unstable_by_key(|&i| keys[i as usize]);
        let mut rank = vec![0u32; keys.len()];
        for (place, &i) in order.iter().enumerate() {
            rank[i as usize] = place as u32;
        }
        for renumber in &mut renumbering {
            for global in renumber.iter_mut() {
                *global = rank[*global as usize];
            }
        }
        let mut row_key = if index_rows {
            vec![0u32; rows]
        } else {
            Vec::new()
        };
        row_key
            .par_chunks_mut(CHUNK_ROWS)
            .zip(&chunks)
            .zip(&renumbering)
            .for_each(|((out, chunk), renumber)| {
                for (slot, &local) in out.iter_mut().zip(&chunk.row_key) {
                    *slot = renumber[local as usize];
                }
            });
        let sorted: Vec<[u64; N]> = order.iter().map(|&i| keys[i as usize]).collect();
        // Each column's distinct values among the distinct keys, and the keys as their ranks.
        let values: [Vec<u64>; N] = std::array::from_fn(|c| {
            let mut column: Vec<u64> = sorted.iter().map(|key| key[c]).collect();
            column.par_sort_unstable();
            column.dedup();
            column
        });
        DistinctKeys {
            keys: (sorted.iter())
                .map(|key| {
                    std::array::from_fn(|c| {
                        values[c].binary_search(&key[c]).expect("a column value") as u32
                    })
                })
                .collect(),
            values,
            counts: order.iter().map(|&i| counts[i as usize]).collect(),
            row_key,
        }
    }
}

/// The distinct keys of one chunk of rows, in order of first appearance, how many rows have
/// each, and each row's index among them.
struct ChunkKeys<const N: usize> {
    keys: Vec<[u64; N]>,
    counts: Vec<u64>,
    row_key: Vec<u32>,
}

/// Bits that number `n` things 0..n.
fn bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

/// The columns' ranks of a packed key, `rank_bits` apiece, the first column highest.
fn unpack<const N: usize>(mut packed: u64, rank_bits: [u32; N]) -> [u32; N] {
    let mut ranks = [0; N];
    for c in (0..N).rev() {
        ranks[c] = (packed & ((1 << rank_bits[c]) - 1)) as u32; // below 2^32: ranks of rows
        packed >>= rank_bits[c];
    }
    ranks
}

/// Sorts `words` by their bits in `bits` (the rest ignored), stably: least significant digit
/// first, DIGIT_BITS a pass, the digits' counts taken in one pass; a digit every word shares
/// takes no pass.
fn radix_sort(words: &mut Vec<u64>, bits: std::ops::Range<u32>) {
    let digits = bits.len().div_ceil(DIGIT_BITS as usize);
    let radix = 1 << DIGIT_BITS;
    let digit = |word: u64, d: usize| {
        ((word >> (bits.start + d as u32 * DIGIT_BITS)) & (radix as u64 - 1)) as usize
    };
    let mut counts = vec![[0usize; 1 << DIGIT_BITS]; digits];
    for &word in words.iter() {
        for (d, count) in counts.iter_mut().enumerate() {
            count[digit(word, d)] += 1;
        }
    }
    let mut scratch = vec![0u64; words.len()];
    for (d, count) in counts.iter_mut().enumerate() {
        if count.contains(&words.len()) {
            continue;
        }
        let mut offset = 0;
        for slot in count.iter_mut() {
            (*slot, offset) = (offset, offset + *slot);
        }
        for &word in words.iter() {
            let slot = &mut count[digit(word, d)];
            scratch[*slot] = word;
            *slot += 1;
        }
        std::mem::swap(words, &mut scratch);
    }
}

/// A history's key: its bit patterns in sort order (frequency, age, recency); `+ 0.0` turns
/// -0.0 into 0.0.
fn key(h: &History) -> [u64; 3] {
    [
        (h.frequency + 0.0).to_bits(),
        (h.age + 0.0).to_bits(),
        (h.recency + 0.0).to_bits(),
    ]
}

/// The customers' distinct histories, sorted by (frequency, age, recency), with how many
/// customers have each and each customer's history; and the distinct ages and recencies among
/// them, with each distinct history's index into those (so a model can take their logarithms
/// once per distinct time).
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctHistories {
    /// The distinct histories, ascending by (frequency, age, recency).
    pub histories: Vec<History>,
    /// How many customers have each.
    pub counts: Vec<u64>,
    /// For each row, its history's index in `histories` (empty from
    /// [`DistinctHistories::counted`]).
    pub row_history: Vec<u32>,
    /// The distinct ages, ascending.
    pub ages: Vec<f64>,
    /// Each distinct history's age's index in `ages`.
    pub age_index: Vec<u32>,
    /// The distinct recencies, ascending.
    pub recencies: Vec<f64>,
    /// Each distinct history's recency's index in `recencies`.
    pub recency_index: Vec<u32>,
}

impl DistinctHistories {
    /// The distinct histories of rows `0..rows`, `history(row)` giving each row's (already
    /// checked: finite, non-negative) history.
    ///
    /// # Panics
    ///
    /// If there are 2^32 rows or more.
    pub fn of(rows: usize, history: impl Fn(usize) -> History + Sync) -> DistinctHistories {
        Self::from_keys(DistinctKeys::of(rows, |row| key(&history(row))))
    }

    /// [`DistinctHistories::of`] without `row_history` (left empty): what the fit needs.
    ///
    /// # Panics
    ///
    /// If there are 2^32 rows or more.
    pub fn counted(rows: usize, history: impl Fn(usize) -> History + Sync) -> DistinctHistories {
        Self::from_keys(DistinctKeys::counted(rows, |row| key(&history(row))))
    }

    fn from_keys(distinct: DistinctKeys<3>) -> DistinctHistories {
        let DistinctKeys {
            values: [frequencies, ages, recencies],
            keys,
            counts,
            row_key,
        } = distinct;
        let as_f64 =
            |bits: Vec<u64>| -> Vec<f64> { bits.into_iter().map(f64::from_bits).collect() };
        let (frequencies, ages, recencies) = (as_f64(frequencies), as_f64(ages), as_f64(recencies));
        DistinctHistories {
            histories: (keys.iter())
                .map(|&[f, a, r]| History {
                    frequency: frequencies[f as usize],
                    recency: recencies[r as usize],
                    age: ages[a as usize],
                })
                .collect(),
            counts,
            row_history: row_key,
            age_index: keys.iter().map(|k| k[1]).collect(),
            recency_index: keys.iter().map(|k| k[2]).collect(),
            ages,
            recencies,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn h(frequency: f64, recency: f64, age: f64) -> History {
        History {
            frequency,
            recency,
            age,
        }
    }

    /// The specification: sort the rows' keys and count runs.
    fn by_sorting<const N: usize>(rows: &[[u64; N]]) -> DistinctKeys<N> {
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        let mut distinct = sorted.clone();
        distinct.dedup();
        let counts = distinct
            .iter()
            .map(|k| {
                (sorted.partition_point(|x| x <= k) - sorted.partition_point(|x| x < k)) as u64
            })
            .collect();
        let values: [Vec<u64>; N] = std::array::from_fn(|c| {
            let mut column: Vec<u64> = rows.iter().map(|k| k[c]).collect();
            column.sort_unstable();
            column.dedup();
            column
        });
        DistinctKeys {
            keys: (distinct.iter())
                .map(|k| std::array::from_fn(|c| values[c].binary_search(&k[c]).unwrap() as u32))
                .collect(),
            row_key: (rows.iter())
                .map(|r| distinct.binary_search(r).unwrap() as u32)
                .collect(),
            values,
            counts,
        }
    }

    /// Both paths, indexed and counted, give the specification's result.
    fn assert_both_paths_sort<const N: usize>(rows: &[[u64; N]]) {
        let expected = by_sorting(rows);
        let counted = DistinctKeys {
            row_key: Vec::new(),
            ..expected.clone()
        };
        for (index_rows, expected) in [(true, &expected), (false, &counted)] {
            let packed = DistinctKeys::packed(rows.len(), &|i| rows[i], index_rows);
            assert_eq!(packed.as_ref(), Some(expected));
            assert_eq!(
                &DistinctKeys::hashed(rows.len(), &|i| rows[i], index_rows),
                expected
            );
        }
    }

    #[test]
    fn sorted_counted_and_indexed_as_by_sorting() {
        let rows = [
            h(2.0, 3.0, 10.0),
            h(0.0, 0.0, 10.0),
            h(2.0, 3.0, 10.0),
            h(0.0, -0.0, 10.0),
            h(1.0, 5.0, 9.0),
        ];
        let distinct = DistinctHistories::of(rows.len(), |i| rows[i]);
        assert_eq!(
            distinct.histories,
            vec![h(0.0, 0.0, 10.0), h(1.0, 5.0, 9.0), h(2.0, 3.0, 10.0)]
        );
        assert_eq!(distinct.counts, vec![2, 1, 2]);
        assert_eq!(distinct.row_history, vec![2, 0, 2, 0, 1]);
        assert_eq!(
            (distinct.ages, distinct.age_index),
            (vec![9.0, 10.0], vec![1, 0, 1])
        );
        assert_eq!(
            (distinct.recencies, distinct.recency_index),
            (vec![0.0, 3.0, 5.0], vec![0, 2, 1])
        );
        assert_both_paths_sort(&rows.iter().map(key).collect::<Vec<_>>());
    }

    #[test]
    fn many_chunks_give_what_one_sort_gives_on_both_paths() {
        // More rows than a chunk, histories repeating across chunks.
        let rows: Vec<[u64; 3]> = (0..(CHUNK_ROWS * 2 + 1234))
            .map(|i| {
                let x = (i * 7919 % 13) as f64;
                let age = 20.0 + (i % 5) as f64 / 7.0;
                let recency = if x == 0.0 {
                    0.0
                } else {
                    age * (i % 11) as f64 / 11.0
                };
                key(&h(x, recency, age))
            })
            .collect();
        assert_both_paths_sort(&rows);
    }

    #[test]
    fn too_many_distinct_values_to_pack_take_the_hashed_path() {
        // 3 columns of 2^17 + 1 distinct values: 3 x 18 rank bits and 18 row bits.
        let rows: Vec<[u64; 3]> = (0..(1u64 << 17) + 1)
            .map(|i| [i, i ^ 1, i * 7 % ((1 << 17) + 1)].map(|v| (v as f64).to_bits()))
            .collect();
        assert_eq!(DistinctKeys::packed(rows.len(), &|i| rows[i], true), None);
        assert_eq!(DistinctKeys::of(rows.len(), |i| rows[i]), by_sorting(&rows));
    }

    proptest! {
        #[test]
        fn both_paths_give_what_one_sort_gives(
            rows in prop::collection::vec(
                (0u32..6, 0u32..40, 0u32..300).prop_map(|(f, a, r)| {
                    key(&h(f64::from(f), f64::from(r.min(a * 7)) / 7.0, f64::from(a) / 7.0))
                }),
                0..2000,
            )
        ) {
            assert_both_paths_sort(&rows);
        }
    }
}

//! The rule table: a bucketised cuckoo hash in an ARRAY map, 8 bytes a slot.
//!
//! Each slot holds the top 56 bits of a name's hash (its tag) and the rule flags in the low
//! 8 bits. A bucket is 8 slots, one 64-byte cache line, and every tag has two candidate
//! buckets, both computed from the tag itself so that the builder can move entries between
//! them. Filled to about 92%, the table costs about 9 bytes per rule, and a lookup reads at
//! most two cache lines.
//!
//! Bucket 0 is the header: the table's shape travels with it, so that swapping in a new
//! table switches the rules and their shape at once.
//!
//! After the data buckets comes a filter: a blocked Bloom filter of 64-byte blocks (about
//! 8 bits a name, 1 byte of kernel memory a rule), 1/8 the size of the buckets, so that it
//! stays in cache where they do not. A name hash whose block lacks one of its three bits has
//! no rule, and its buckets are not read: most suffixes of most names have none. The filter
//! only skips lookups; a name it lets through is looked up as before, so it never decides
//! a block. A table without one (header word [`H_FILTER`] 0, as every table built before
//! it) is looked up in full.

use crate::{
    hash,
    name::{LABEL_SLOTS, MAX_LABELS},
    rule::Verdict,
};

/// Slots per bucket.
pub const SLOTS: usize = 8;
/// One bucket: a cache line.
pub type Bucket = [u64; SLOTS];
/// Index of the header bucket.
pub const HEADER: u32 = 0;
/// `header[0]`: marks a built table.
pub const MAGIC: u64 = 0x646e_7373_696e_6b31; // "dnssink1"
/// Header words.
pub const H_MAGIC: usize = 0;
pub const H_BUCKETS: usize = 1;
pub const H_ROOT: usize = 2;
pub const H_RULES: usize = 3;
/// The filter's blocks, after the data buckets (0: no filter).
pub const H_FILTER: usize = 4;
/// Filter bits a name.
pub const FILTER_BITS: u64 = 8;
/// Low bits of a slot that hold the flags.
pub const FLAG_MASK: u64 = 0xff;

/// Set in every tag, so that no tag is 0, which marks an empty slot.
const TAG_SET: u64 = 1 << 8;

/// The tag stored for a name hash: its top 55 bits, and [`TAG_SET`]. No branch.
#[inline(always)]
pub const fn tag(h: u64) -> u64 {
    (h & !FLAG_MASK) | TAG_SET
}

/// Maps `x` onto `0..n` (n below 2^32) by its top bits: no division.
#[inline(always)]
const fn reduce(x: u64, n: u64) -> u64 {
    ((x >> 32) * n) >> 32
}

/// The two candidate buckets of a tag, for a table of `n` data buckets (bucket 0 is the
/// header, so the results are in `1..=n`).
#[inline(always)]
pub const fn buckets(tag: u64, n: u64) -> (u32, u32) {
    let b1 = reduce(tag, n);
    let b2 = reduce(hash::combine(tag, 0x9e37_79b9_7f4a_7c15), n);
    (1 + b1 as u32, 1 + b2 as u32)
}

/// The filter block of `tag`, in `1 + n ..= n + f` (after the `n` data buckets), and its
/// three bits in the block's 512.
#[inline(always)]
pub const fn filter_place(tag: u64, n: u64, f: u64) -> (u32, [u32; 3]) {
    let block = 1 + n + reduce(hash::combine(tag, 0xc2b2_ae3d_27d4_eb4f), f);
    let b = hash::combine(tag, 0x1656_67b1_9e37_79f9);
    (
        block as u32,
        [
            (b & 511) as u32,
            (b >> 9 & 511) as u32,
            (b >> 18 & 511) as u32,
        ],
    )
}

/// Whether `block` has all three `bits`: 0 or 1, with no branch.
#[inline(always)]
pub fn filter_has(block: &Bucket, bits: [u32; 3]) -> u64 {
    let bit = |b: u32| block[(b >> 6) as usize & (SLOTS - 1)] >> (b & 63) & 1;
    bit(bits[0]) & bit(bits[1]) & bit(bits[2])
}

/// The flags of `tag` in `bucket`, or 0: compares all slots, with no early exit.
#[inline(always)]
pub fn find(bucket: &Bucket, tag: u64) -> u8 {
    find_with(bucket, tag, |x| x)
}

/// [`find`], with no branch: `opaque` must return its argument, and BPF makes it a value the
/// compiler cannot see into. Otherwise LLVM turns the arithmetic back into a comparison, and
/// each comparison into a branch: 16 branches a label, which multiply the paths the BPF
/// verifier walks.
#[inline(always)]
pub fn find_with(bucket: &Bucket, tag: u64, opaque: impl Fn(u64) -> u64) -> u8 {
    let mut flags = 0u64;
    let mut i = 0;
    while i < SLOTS {
        let s = bucket[i];
        // Below 2^56, and 0 exactly when the slot holds `tag`.
        let x = opaque((s ^ tag) >> 8);
        // 0 when x is 0, 1 for any other x below 2^56.
        let miss = (x + ((1 << 56) - 1)) >> 56;
        flags |= (s & FLAG_MASK) & miss.wrapping_sub(1);
        i += 1;
    }
    flags as u8
}

/// A rule table, read a bucket at a time: the kernel's map, or the buckets in memory. The
/// one lookup below runs over either, so that `query` answers as the kernel does.
pub trait Buckets {
    /// Bucket `i`, or `None` past the end.
    fn bucket(&self, i: u32) -> Option<&Bucket>;
}

impl Buckets for [Bucket] {
    #[inline(always)]
    fn bucket(&self, i: u32) -> Option<&Bucket> {
        self.get(i as usize)
    }
}

/// What the header says of a built table: its data buckets and its hash chain's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub buckets: u64,
    pub root: u64,
    /// Filter blocks (0: none).
    pub filter: u64,
}

/// The shape of `t`, or `None` if its header does not mark a built table.
#[inline(always)]
pub fn shape<T: Buckets + ?Sized>(t: &T) -> Option<Shape> {
    let header = t.bucket(HEADER)?;
    (header[H_MAGIC] == MAGIC).then(|| Shape {
        buckets: header[H_BUCKETS],
        root: header[H_ROOT],
        filter: header[H_FILTER],
    })
}

/// The rule flags stored for the name hash `h` in `t`, of `n` data buckets and `f` filter
/// blocks: 0 when the filter says no rule; else both candidate buckets read, each compared
/// whole ([`find_with`], with its `opaque`).
#[inline(always)]
pub fn flags<T: Buckets + ?Sized>(
    t: &T,
    h: u64,
    n: u64,
    f: u64,
    opaque: impl Fn(u64) -> u64,
) -> u8 {
    let tag = tag(h);
    if f != 0 {
        let (block, bits) = filter_place(tag, n, f);
        if t.bucket(block).map_or(0, |b| filter_has(b, bits)) == 0 {
            return 0;
        }
    }
    let (b1, b2) = buckets(tag, n);
    t.bucket(b1).map_or(0, |b| find_with(b, tag, &opaque))
        | t.bucket(b2).map_or(0, |b| find_with(b, tag, &opaque))
}

/// The verdict for a name of `count` labels, whose label hashes are `label(0)` (the first
/// label) to `label(count - 1)` (the top-level domain): every suffix, from the top-level
/// domain down, chained from `root` and looked up with `flags`.
///
/// Verifier: the parents are visited in a loop of at most [`MAX_LABELS`] turns, and the whole
/// name after it, so that the loop body has one branch fewer to check. `count` is masked to
/// the label slots, which bounds every index the closures get.
#[inline(always)]
pub fn lookup(
    root: u64,
    count: usize,
    label: impl Fn(usize) -> u64,
    flags: impl Fn(u64) -> u8,
) -> Verdict {
    let mut v = Verdict::default();
    let mut h = root;
    let labels = count & (LABEL_SLOTS - 1);
    let mut j = 0usize;
    while j < MAX_LABELS {
        if j + 1 >= labels {
            break;
        }
        h = hash::combine(h, label((labels - 1 - j) & (LABEL_SLOTS - 1)));
        v.visit(flags(h), false);
        j += 1;
    }
    if labels > 0 {
        h = hash::combine(h, label(0));
        v.visit(flags(h), true);
    }
    v
}

/// The hash chain's starting value for a table built with `seed` (0 for the plain
/// [`hash::name`]).
#[inline(always)]
pub const fn root(seed: u64) -> u64 {
    hash::ROOT ^ seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_never_empty_and_keep_the_top_bits() {
        assert_eq!(tag(0), 1 << 8);
        assert_eq!(tag(0xff), 1 << 8);
        assert_eq!(tag(0x1234_5678_9abc_de00), 0x1234_5678_9abc_df00);
        assert_eq!(tag(0x1234_5678_9abc_def0), 0x1234_5678_9abc_df00);
    }

    #[test]
    fn buckets_are_in_range_and_spread() {
        for n in [1u64, 2, 7, 1000, 1 << 20] {
            let mut hit = [0u32; 8];
            for i in 0..10_000u64 {
                let t = tag(hash::combine(hash::ROOT, i));
                let (a, b) = buckets(t, n);
                assert!((1..=n as u32).contains(&a) && (1..=n as u32).contains(&b));
                hit[(a as u64 * 8 / (n + 1)) as usize] += 1;
            }
            if n >= 1000 {
                assert!(hit.iter().all(|&h| h > 1000), "{hit:?}");
            }
        }
    }

    #[test]
    fn find_matches_the_whole_tag() {
        let t = tag(0xabcd_ef01_2345_6789);
        let mut b: Bucket = [0; SLOTS];
        b[3] = t | 0x05;
        assert_eq!(find(&b, t), 0x05);
        assert_eq!(find(&b, t ^ (1 << 40)), 0);
        assert_eq!(find(&b, t ^ (1 << 63)), 0);
        assert_eq!(find(&b, t ^ (1 << 9)), 0);
        assert_eq!(find(&b, tag(0)), 0);
        // Several slots: only the matching one counts.
        b[0] = tag(1 << 20) | 0x80;
        b[7] = t | 0x02;
        assert_eq!(find(&b, t), 0x07);
        assert_eq!(find(&b, tag(1 << 20)), 0x80);
    }
}

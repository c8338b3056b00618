//! The question-name walker: one pass over the wire name, label by label.
//!
//! It checks the name, folds ASCII to lower case, hashes each label, and sums the original
//! bytes for the UDP checksum of the answer. What it cannot handle it reports as an error, and
//! the caller passes the packet to the resolver.

use crate::{
    Packet, csum,
    hash::{self, fold},
};

/// The longest name on the wire: 253 characters of text, plus the first length byte and the
/// terminating root label.
pub const MAX_WIRE: usize = 255;
/// The most labels a 255-byte wire name can hold (127 one-byte labels and the root).
pub const MAX_LABELS: usize = 127;
/// Size of the label-hash table: a power of two above [`MAX_LABELS`], so that an index can be
/// masked into range where the verifier wants proof.
pub const LABEL_SLOTS: usize = 128;

/// Why a name was not handled. Each is counted by the BPF program and passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The packet ended inside the name.
    Truncated,
    /// A compression pointer: queries have no reason to carry one.
    Compressed,
    /// A reserved label type (0x40 or 0x80 in the length byte).
    BadLabel,
    /// More than 255 bytes on the wire.
    TooLong,
    /// The root name `.`: no rule can name it.
    Root,
}

impl NameError {
    /// The counter of a query whose name this is: one that cannot be parsed, but for the
    /// root, which no rule can name: a query for it is well formed, and passes.
    #[inline(always)]
    pub const fn counter(self) -> u32 {
        use crate::counters as c;
        match self {
            NameError::Truncated => c::TRUNCATED,
            NameError::Compressed => c::COMPRESSED,
            NameError::BadLabel | NameError::TooLong => c::BAD_NAME,
            NameError::Root => c::PASSED,
        }
    }
}

/// A walked name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name {
    /// Bytes on the wire, including the root label.
    pub wire_len: usize,
}

/// Where the walker puts the hash of each label, left to right.
pub trait Labels {
    /// The label slots. The walker writes one at every byte (the hash so far of the label it
    /// is in), so that it need not branch on where a label ends: slot `k` holds the `k`-th
    /// label's hash once the walk is done, and slot `LABEL_SLOTS - 1` is its scratch.
    fn slots(&mut self) -> &mut [u64; LABEL_SLOTS];
    /// Says how many labels the name has.
    fn set_count(&mut self, n: usize);

    /// Appends a label's hash ([`walk_branching`]). BPF keeps the count in map memory: a count
    /// in a register is a value the verifier tracks exactly, and would split the walk by it.
    fn push(&mut self, hash: u64);

    /// `v`, unchanged; BPF passes it through map memory so that the verifier stops tracking
    /// its exact value ([`walk_branching`]'s count of bytes left in a label).
    #[inline(always)]
    fn opaque(&mut self, v: usize) -> usize {
        v
    }
}

/// Label hashes in an array, for the host.
#[derive(Clone, Debug)]
pub struct LabelHashes {
    pub hashes: [u64; LABEL_SLOTS],
    pub len: usize,
}

impl Default for LabelHashes {
    fn default() -> Self {
        LabelHashes {
            hashes: [0; LABEL_SLOTS],
            len: 0,
        }
    }
}

impl Labels for LabelHashes {
    fn slots(&mut self) -> &mut [u64; LABEL_SLOTS] {
        &mut self.hashes
    }

    fn set_count(&mut self, n: usize) {
        self.len = n;
    }

    fn push(&mut self, hash: u64) {
        self.hashes[self.len & (LABEL_SLOTS - 1)] = hash;
        self.len += 1;
    }
}

/// 1 if `x` is 0, else 0 (for `x` below 2^63), without a branch.
#[inline(always)]
fn is_zero(x: u64) -> u64 {
    x.wrapping_sub(1) >> 63
}

/// [`hash::fold`] without a branch: `t = b - 'A'` is below 26 exactly when both `!t` and `t - 26`
/// have the sign bit set.
#[inline(always)]
fn fold_bits(b: u64) -> u64 {
    let t = b.wrapping_sub(b'A' as u64);
    b | crate::hide((!t & t.wrapping_sub(26)) >> 63) << 5
}

/// The ones'-complement partial sum of the name's `wire_len` bytes (1 to [`MAX_WIRE`]) as
/// they sit at an even position of the UDP datagram, from the 8-byte words the name starts
/// (`word(i)`, the name's bytes 8i to 8i+7 in memory order; past the name, the last word's
/// bytes are masked off): the answer's UDP checksum takes it. Four bytes an addition, where
/// two bytes a step through `Packet::at` (a masked load each) cost a blocked answer about
/// 50 ns. Apart from the walk, so that only a blocked name pays for it.
#[inline(always)]
pub fn checksum_part(word: impl Fn(usize) -> u64, wire_len: usize) -> u32 {
    const WORDS: u64 = (MAX_WIRE as u64).div_ceil(8);
    let halves = |w: u64| (w & 0xffff_ffff) + (w >> 32);
    let whole = wire_len / 8;
    let mut sum = 0u64;
    let mut i = 0u64;
    // The whole words. The bound is hidden from LLVM, which would drop it as implied by the
    // break: verifiers as old as 6.1 learn no bound from a compare of two registers.
    while crate::hide(i) < WORDS {
        if i as usize >= whole {
            break;
        }
        sum += halves(word(i as usize));
        i += 1;
    }
    // Then the 0 to 7 bytes left, masked without a branch: each branch in the loop would
    // fork the verifier's paths once per word (9k verified instructions).
    let rest = (wire_len % 8) as u64 * 8;
    let keep = if cfg!(target_endian = "little") {
        (1u64 << rest) - 1
    } else {
        !(u64::MAX >> rest)
    };
    sum += halves(word(whole) & keep);
    // Summed in memory order: on a little-endian machine, the byte-swap of the big-endian
    // sum (RFC 1071).
    let folded = csum::Sum::from_partial(0).plus(sum).fold();
    if cfg!(target_endian = "little") {
        folded.swap_bytes() as u32
    } else {
        folded as u32
    }
}

/// [`walk`], one byte at a time with a branch on each: the same result for every input
/// (a host test holds them to it), in about a third of the instructions per byte.
///
/// Verifier: each byte's branches are pending at once, and older verifiers prune them
/// poorly: 6.1's gave up on an earlier form of the program built on it (more than 8192
/// branches pending). The loader tries this walk first, and [`walk`] where the verifier
/// refuses it.
#[inline(always)]
pub fn walk_branching<P: Packet + ?Sized, L: Labels>(
    pkt: &P,
    start: usize,
    labels: &mut L,
) -> Result<Name, NameError> {
    labels.set_count(0);
    let avail = pkt.size().saturating_sub(start);
    let mut left = 0usize; // bytes still to read in the current label
    let mut len = 0u8; // length of the current label
    let mut h = hash::LABEL_SEED;
    let mut i = 0usize;
    while i < MAX_WIRE {
        if i >= avail {
            return Err(NameError::Truncated);
        }
        let b = pkt.at(start + i);
        left = labels.opaque(left);
        if left == 0 {
            if b == 0 {
                // A zero first byte is the root name: no labels.
                if i == 0 {
                    return Err(NameError::Root);
                }
                return Ok(Name { wire_len: i + 1 });
            }
            match b & 0xC0 {
                0 => {}
                0xC0 => return Err(NameError::Compressed),
                _ => return Err(NameError::BadLabel),
            }
            left = b as usize;
            len = b;
            h = hash::LABEL_SEED;
        } else {
            h = hash::label_step(h, fold(b));
            left -= 1;
            if left == 0 {
                labels.push(hash::label_finish(h, len));
            }
        }
        i += 1;
    }
    Err(NameError::TooLong)
}

/// Walks the name that starts at `start` in `pkt`. Each label's hash goes to `labels`, left to
/// right.
///
/// Verifier: the loop body has no branch but the one that ends the loop. Where a label
/// starts, what its length byte says and what the hash becomes are computed with masks from
/// `m`, 1 at a length byte; the walk stops at the length byte that ends the name (0) or is
/// none (64 and up: a compression pointer or a reserved type), and what it stopped on is
/// sorted out after the loop. So each byte is verified once, whatever the verifier's version
/// and however well it prunes ([`walk_branching`] is the one that branches).
#[inline(always)]
pub fn walk<P: Packet + ?Sized, L: Labels>(
    pkt: &P,
    start: usize,
    labels: &mut L,
) -> Result<Name, NameError> {
    use crate::hide;
    labels.set_count(0);
    let avail = pkt.size().saturating_sub(start);
    if avail == 0 {
        return Err(NameError::Truncated);
    }
    // The index of the last byte the walk may read.
    let last = hide(avail.min(MAX_WIRE) as u64 - 1);
    let slots = labels.slots();
    let mut next = 0u64; // index of the next length byte
    let mut len = 0u64; // length of the current label
    let mut h = hash::LABEL_SEED;
    let mut count = 0u64; // one more than the labels done, past the first length byte
    let (mut b, mut m) = (0u64, 0u64);
    let mut i = 0usize;
    while i < MAX_WIRE {
        b = hide(pkt.at(start + i) as u64);
        m = hide(is_zero(i as u64 ^ next));
        let all = hide(m.wrapping_neg()); // all ones at a length byte
        // The label before this length byte is done: its hash stays in its slot.
        slots[(count.wrapping_sub(1) & (LABEL_SLOTS as u64 - 1)) as usize] =
            hash::label_finish(h, len as u8);
        count += m;
        // `x ^ ((x ^ y) & all)` is `y` at a length byte, else `x`: an AND of two unknown
        // values. (6.18's verifier splits its state on an AND of a constant and a value it
        // knows to be 0 or -1.)
        next += (b + 1) & all;
        len ^= (len ^ b) & all;
        let step = hash::label_step(h, fold_bits(b) as u8);
        h = step ^ ((step ^ hash::LABEL_SEED) & all);
        // 1 for a byte of 0 or of 64 and up: `b - 1`, as a byte, is 63 or more.
        let stops = (((b + 255) & 255) + 193) >> 8;
        if (m & hide(stops)) | is_zero(hide(last ^ i as u64)) != 0 {
            break;
        }
        i += 1;
    }
    if m != 0 && b >= 0xC0 {
        return Err(NameError::Compressed);
    }
    if m != 0 && b >= 0x40 {
        return Err(NameError::BadLabel);
    }
    if m == 0 || b != 0 {
        return Err(if avail < MAX_WIRE {
            NameError::Truncated
        } else {
            NameError::TooLong
        });
    }
    // A zero first byte is the root name: no labels.
    if i == 0 {
        return Err(NameError::Root);
    }
    labels.set_count(count as usize - 1);
    Ok(Name { wire_len: i + 1 })
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use super::*;

    fn wire(name: &str) -> [u8; 300] {
        let mut out = [0u8; 300];
        let mut n = 0;
        for label in name.split('.').filter(|l| !l.is_empty()) {
            out[n] = label.len() as u8;
            out[n + 1..n + 1 + label.len()].copy_from_slice(label.as_bytes());
            n += 1 + label.len();
        }
        out
    }

    fn walk_str(name: &str) -> Result<(Name, LabelHashes), NameError> {
        let w = wire(name);
        let mut l = LabelHashes::default();
        walk(&w[..], 0, &mut l).map(|n| (n, l))
    }

    #[test]
    fn walks_labels_and_length() {
        let (n, l) = walk_str("www.Example.COM").unwrap();
        assert_eq!(l.len, 3);
        assert_eq!(n.wire_len, 17);
        assert_eq!(l.hashes[0], hash::label("www"));
        assert_eq!(l.hashes[1], hash::label("example"));
        assert_eq!(l.hashes[2], hash::label("com"));
    }

    #[test]
    fn folds_ascii_only() {
        assert_eq!(fold(b'A'), b'a');
        assert_eq!(fold(b'Z'), b'z');
        assert_eq!(fold(b'@'), b'@');
        assert_eq!(fold(b'['), b'[');
        assert_eq!(fold(0xC4), 0xC4);
        let (_, a) = walk_str("ADS.Tracker.NET").unwrap();
        let (_, b) = walk_str("ads.tracker.net").unwrap();
        assert_eq!(a.hashes[..3], b.hashes[..3]);
    }

    #[test]
    fn longest_names_are_handled() {
        // 253 characters of text: 63+1+63+1+63+1+61.
        let name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(name.len(), 253);
        let (n, l) = walk_str(&name).unwrap();
        assert_eq!((n.wire_len, l.len), (255, 4));
        // 127 one-byte labels: the most labels a name can have.
        let many = ["x"; 127].join(".");
        let (n, l) = walk_str(&many).unwrap();
        assert_eq!((n.wire_len, l.len), (255, 127));
        assert_eq!(l.hashes[126], hash::label("x"));
    }

    #[test]
    fn rejects_what_it_cannot_handle() {
        let mut hashes = LabelHashes::default();
        // A 254-character name is one byte too long.
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        assert_eq!(walk_str(&long).unwrap_err(), NameError::TooLong);
        assert_eq!(
            walk(&[3, b'f', b'o', b'o', 0xC0, 12][..], 0, &mut hashes),
            Err(NameError::Compressed)
        );
        assert_eq!(
            walk(&[0x41, b'x', 0][..], 0, &mut hashes),
            Err(NameError::BadLabel)
        );
        assert_eq!(
            walk(&[3, b'f', b'o'][..], 0, &mut hashes),
            Err(NameError::Truncated)
        );
        assert_eq!(walk(&[0][..], 0, &mut hashes), Err(NameError::Root));
    }

    #[test]
    fn errors_count_as_unparsed_but_the_root_passes() {
        use crate::counters as c;
        for e in [
            NameError::Truncated,
            NameError::Compressed,
            NameError::BadLabel,
            NameError::TooLong,
        ] {
            assert!(c::unparsed(e.counter()), "{e:?}");
        }
        assert_eq!(NameError::Root.counter(), c::PASSED);
    }

    #[test]
    fn fold_without_a_branch_is_fold() {
        for b in 0..=255u8 {
            assert_eq!(fold_bits(b as u64) as u8, fold(b), "{b:#x}");
        }
    }

    #[test]
    fn the_two_walks_agree() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..200_000 {
            // Mostly well-formed names, some with a bad length byte or cut short.
            let mut w = std::vec::Vec::new();
            let most = if rnd(4) == 0 { 130 } else { 6 };
            let labels = 1 + rnd(most);
            for _ in 0..labels {
                let n = match rnd(20) {
                    0 => 0x40 | rnd(64) as u8,
                    1 => 0xC0 | rnd(64) as u8,
                    2 => 63,
                    _ => 1 + rnd(12) as u8,
                };
                w.push(n);
                for _ in 0..(n & 0x3f) {
                    w.push(b"aZ-0_\x00.\xff"[rnd(8) as usize]);
                }
            }
            w.push(0);
            if rnd(5) == 0 {
                let keep = rnd(w.len() as u64 + 1) as usize;
                w.truncate(keep);
            }
            let mut l = LabelHashes::default();
            let got = walk(&w[..], 0, &mut l).map(|n| (n.wire_len, l.hashes[..l.len].to_vec()));
            let mut l = LabelHashes::default();
            let branching =
                walk_branching(&w[..], 0, &mut l).map(|n| (n.wire_len, l.hashes[..l.len].to_vec()));
            assert_eq!(branching, got, "{w:?}");
        }
    }

    /// The name's words from a byte slice, zero past its end.
    pub(crate) fn words(b: &[u8]) -> impl Fn(usize) -> u64 + '_ {
        |i| {
            let mut w = [0u8; 8];
            for (k, x) in w.iter_mut().enumerate() {
                *x = b.get(i * 8 + k).copied().unwrap_or(0xa5);
            }
            u64::from_ne_bytes(w)
        }
    }

    #[test]
    fn checksum_part_matches_a_plain_sum() {
        // Every length from 1 to 9 words, and what follows the name is not summed.
        let mut hashes = LabelHashes::default();
        for len in 1..70 {
            let label = "a".repeat(len % 63 + 1);
            let name = std::format!("{label}.Mixed{}.example", len);
            let mut w = wire(&name);
            let n = walk(&w[..], 0, &mut hashes).unwrap();
            w[n.wire_len..n.wire_len + 6].copy_from_slice(&[0, 1, 0, 1, 0xff, 0x13]);
            let mut c = csum::Sum::new();
            c.add_bytes(&w[..n.wire_len], 20);
            let part = checksum_part(words(&w), n.wire_len);
            assert_eq!(csum::Sum::from_partial(part).fold(), c.fold(), "{name}");
        }
    }
}

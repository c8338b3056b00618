//! The question-name walker: one pass over the wire name, label by label.
//!
//! It checks the name, folds ASCII to lower case, hashes each label, and sums the original
//! bytes for the UDP checksum of the answer. What it cannot handle it reports as an error, and
//! the caller passes the packet to the resolver.

use crate::{Packet, csum, hash};

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
    /// Ones'-complement partial sum of the original bytes, as they sit in the UDP datagram.
    pub csum: u32,
}

/// Where the walker puts the hash of each label, left to right.
///
/// The walker keeps no label count of its own: in BPF a count held in a register is a value
/// the verifier must track exactly, and it would verify the loop once per count. The BPF side
/// keeps the count in map memory instead, which the verifier does not track.
pub trait Labels {
    fn push(&mut self, hash: u64);

    /// `v`, unchanged; BPF passes it through map memory so that the verifier stops tracking
    /// its exact value (the walker's count of bytes left in a label, which would otherwise
    /// split the verification of every byte by the range of that count).
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
    fn push(&mut self, hash: u64) {
        self.hashes[self.len & (LABEL_SLOTS - 1)] = hash;
        self.len += 1;
    }
}

/// ASCII lower case; every other byte is kept as it is.
#[inline(always)]
pub const fn fold(b: u8) -> u8 {
    if b.is_ascii_uppercase() { b | 0x20 } else { b }
}

/// Walks the name that starts at `start` in `pkt`.
///
/// `udp_pos` is the offset of `start` from the beginning of the UDP header; it places each
/// byte in its 16-bit word for the checksum. Each label's hash goes to `labels`, left to
/// right.
#[inline(always)]
pub fn walk<P: Packet + ?Sized, L: Labels>(
    pkt: &P,
    start: usize,
    udp_pos: usize,
    labels: &mut L,
) -> Result<Name, NameError> {
    let mut left = 0usize; // bytes still to read in the current label
    let mut len = 0u8; // length of the current label
    let mut h = hash::LABEL_SEED;
    let mut sum = 0u32;
    let mut i = 0usize;
    while i < MAX_WIRE {
        let b = match pkt.byte(start + i) {
            Some(b) => b,
            None => return Err(NameError::Truncated),
        };
        sum += csum::word_part(b, udp_pos + i);
        left = labels.opaque(left);
        if left == 0 {
            if b == 0 {
                // A zero first byte is the root name: no labels.
                if i == 0 {
                    return Err(NameError::Root);
                }
                return Ok(Name {
                    wire_len: i + 1,
                    csum: sum,
                });
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

#[cfg(test)]
mod tests {
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
        walk(&w[..], 0, 0, &mut l).map(|n| (n, l))
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
            walk(&[3, b'f', b'o', b'o', 0xC0, 12][..], 0, 0, &mut hashes),
            Err(NameError::Compressed)
        );
        assert_eq!(
            walk(&[0x41, b'x', 0][..], 0, 0, &mut hashes),
            Err(NameError::BadLabel)
        );
        assert_eq!(
            walk(&[3, b'f', b'o'][..], 0, 0, &mut hashes),
            Err(NameError::Truncated)
        );
        assert_eq!(walk(&[0][..], 0, 0, &mut hashes), Err(NameError::Root));
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
    fn checksum_part_matches_a_plain_sum() {
        let w = wire("mixed.Case.example");
        let mut hashes = LabelHashes::default();
        for pos in [0usize, 1] {
            let n = walk(&w[..], 0, pos, &mut hashes).unwrap();
            let mut c = csum::Sum::new();
            c.add_bytes(&w[..n.wire_len], pos);
            assert_eq!(csum::Sum::from_partial(n.csum).fold(), c.fold());
        }
    }
}

//! The 64-bit name hash that keys the rule maps.
//!
//! A name is hashed label by label from the right, so that walking a query name once gives
//! the hash of the name and of every parent domain: `h(com)`, `h(example.com)`,
//! `h(www.example.com)`. Each label is hashed on its own (FNV-1a over the case-folded bytes,
//! then its length), and the chain mixes each label into the hash of its parent with a
//! 64-bit finaliser. Label boundaries are part of the hash, so `a.bc` and `ab.c` differ, and a
//! label that holds a dot byte is not the same as two labels.

/// FNV-1a offset basis.
pub const LABEL_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// The hash of the root, where every chain starts.
pub const ROOT: u64 = 0x6a09_e667_f3bc_c909;

#[inline(always)]
pub const fn label_step(h: u64, folded: u8) -> u64 {
    (h ^ folded as u64).wrapping_mul(FNV_PRIME)
}

#[inline(always)]
pub const fn label_finish(h: u64, len: u8) -> u64 {
    (h ^ ((len as u64) << 56)).wrapping_mul(FNV_PRIME)
}

/// Mixes a label's hash into its parent's: `combine(h(example.com), label(www))` is
/// `h(www.example.com)`.
#[inline(always)]
pub const fn combine(parent: u64, label: u64) -> u64 {
    let mut x = parent.rotate_left(23) ^ label;
    // murmur3 fmix64
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// ASCII lower case; every other byte is kept as it is. Names compare without case, and so
/// they hash: the walks fold each byte as they hash it.
#[inline(always)]
pub const fn fold(b: u8) -> u8 {
    if b.is_ascii_uppercase() { b | 0x20 } else { b }
}

/// Hash of one label given as text (folded like the walker folds).
pub fn label(text: &str) -> u64 {
    let mut h = LABEL_SEED;
    for &b in text.as_bytes() {
        h = label_step(h, fold(b));
    }
    label_finish(h, text.len() as u8)
}

/// Hash of a whole name given as text, with or without the trailing dot. This is the key a
/// rule for that name is stored under.
pub fn name(text: &str) -> u64 {
    name_from(ROOT, text)
}

/// [`name`], with the chain started at `root` (a table's seeded root).
pub fn name_from(root: u64, text: &str) -> u64 {
    let mut h = root;
    for l in text.trim_end_matches('.').rsplit('.') {
        h = combine(h, label(l));
    }
    h
}

/// [`name_from`], and a second hash of the name, independent of it, in one pass over the
/// labels: the second tells two names that share a tag apart when a table is built.
pub fn name_and_check(root: u64, text: &str) -> (u64, u32) {
    let (mut h, mut c) = (root, 0x243f_6a88_85a3_08d3u64);
    for l in text.trim_end_matches('.').rsplit('.') {
        let lh = label(l);
        h = combine(h, lh);
        c = combine(c.rotate_left(17) ^ 0x1319_8a2e_0370_7344, lh.swap_bytes());
    }
    (h, (c >> 32) as u32 ^ c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_gives_parents() {
        let com = combine(ROOT, label("com"));
        let ex = combine(com, label("example"));
        assert_eq!(name("com"), com);
        assert_eq!(name("example.com"), ex);
        assert_eq!(name("example.com."), ex);
        assert_eq!(name("www.example.com"), combine(ex, label("www")));
    }

    #[test]
    fn case_and_boundaries() {
        assert_eq!(name("WWW.Example.Com"), name("www.example.com"));
        assert_ne!(name("a.bc"), name("ab.c"));
        assert_ne!(name("ab"), name("ba"));
        assert_ne!(name("a.a"), name("a"));
        assert_ne!(label(""), label("\0"));
    }

    #[test]
    fn no_collisions_in_a_small_space() {
        // Every name of up to three labels from a small alphabet hashes apart.
        extern crate std;
        use std::{collections::HashSet, format, string::String, vec::Vec};
        let alpha = ["a", "b", "aa", "ab", "ba", "0", "-", "a-b", "xn--p1ai"];
        let mut names: Vec<String> = Vec::new();
        for x in alpha {
            names.push(x.into());
            for y in alpha {
                names.push(format!("{x}.{y}"));
                for z in alpha {
                    names.push(format!("{x}.{y}.{z}"));
                }
            }
        }
        let set: HashSet<u64> = names.iter().map(|n| name(n)).collect();
        assert_eq!(set.len(), names.len());
    }
}

//! Rule encoding: what a rule-map entry means, and how the entries met on the way from the
//! top-level domain to the full name decide the verdict.
//!
//! One map entry per name carries every kind of rule for that name as flag bits. A name is
//! blocked when a block rule matches it (exactly, or by a subtree rule on the name or one of
//! its parents) and no allow rule matches it in the same way. Allow beats block.

/// Block this name only.
pub const BLOCK_EXACT: u8 = 1 << 0;
/// Block this name and every name below it.
pub const BLOCK_SUBTREE: u8 = 1 << 1;
/// Allow this name only.
pub const ALLOW_EXACT: u8 = 1 << 2;
/// Allow this name and every name below it.
pub const ALLOW_SUBTREE: u8 = 1 << 3;
/// Block every name below this one, not the name itself (RPZ `*.name`).
pub const BLOCK_BELOW: u8 = 1 << 4;
/// Allow every name below this one, not the name itself.
pub const ALLOW_BELOW: u8 = 1 << 5;
/// A canary (this name and below): answered NXDOMAIN whatever the response mode, so that a
/// browser or OS turns its resolver bypass off (`use-application-dns.net`, iCloud Private
/// Relay's `mask.icloud.com`).
pub const CANARY_NXDOMAIN: u8 = 1 << 6;
/// A canary answered NODATA (RFC 9462 discovery under `resolver.arpa`).
pub const CANARY_NODATA: u8 = 1 << 7;

/// What the lookups along a name found: the flags of the full name, and the OR of the flags
/// of its parents. Kept as plain bits, with no branch until the end, so that the BPF
/// verifier sees one state per lookup rather than one per combination of outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub whole: u8,
    pub parents: u8,
}

impl Verdict {
    /// Takes the flags found for one suffix of the name; `whole` is true for the full name.
    #[inline(always)]
    pub fn visit(&mut self, flags: u8, whole: bool) {
        if whole {
            self.whole |= flags;
        } else {
            self.parents |= flags;
        }
    }

    #[inline(always)]
    const fn subtree_bits(&self) -> u8 {
        self.parents | self.whole
    }

    /// A block rule matches: exactly, through a subtree rule on the name or a parent, or
    /// through a below-only rule on a parent.
    #[inline(always)]
    pub const fn block(&self) -> bool {
        (self.subtree_bits() & BLOCK_SUBTREE)
            | (self.whole & BLOCK_EXACT)
            | (self.parents & BLOCK_BELOW)
            != 0
    }

    /// An allow rule matches, in the same way.
    #[inline(always)]
    pub const fn allow(&self) -> bool {
        (self.subtree_bits() & ALLOW_SUBTREE)
            | (self.whole & ALLOW_EXACT)
            | (self.parents & ALLOW_BELOW)
            != 0
    }

    /// The block comes from a rule on a parent or a subtree rule (else from an exact one).
    #[inline(always)]
    pub const fn subtree(&self) -> bool {
        (self.subtree_bits() & BLOCK_SUBTREE) | (self.parents & BLOCK_BELOW) != 0
    }

    /// Whether the name gets the sinkhole answer: allow beats block.
    #[inline(always)]
    pub const fn blocked(&self) -> bool {
        (self.block() || self.canary() != 0) && !self.allow()
    }

    /// The canary bits that match (on the name or a parent), if any: they choose the answer.
    #[inline(always)]
    pub const fn canary(&self) -> u8 {
        self.subtree_bits() & (CANARY_NXDOMAIN | CANARY_NODATA)
    }

    /// The counter of an answer from this verdict: by a canary, a subtree rule, or an exact
    /// one.
    #[inline(always)]
    pub const fn answered_by(&self) -> u32 {
        if self.canary() != 0 {
            crate::counters::ANSWERED_CANARY
        } else if self.subtree() {
            crate::counters::ANSWERED_SUBTREE
        } else {
            crate::counters::ANSWERED_EXACT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(path: &[u8]) -> Verdict {
        // `path` lists the flags from the top-level domain down to the full name.
        let mut v = Verdict::default();
        for (i, &f) in path.iter().enumerate() {
            v.visit(f, i + 1 == path.len());
        }
        v
    }

    #[test]
    fn exact_matches_only_the_name() {
        assert!(verdict(&[0, 0, BLOCK_EXACT]).blocked());
        assert!(!verdict(&[0, BLOCK_EXACT, 0]).blocked());
    }

    #[test]
    fn subtree_matches_name_and_below() {
        assert!(verdict(&[0, BLOCK_SUBTREE]).blocked());
        let v = verdict(&[BLOCK_SUBTREE, 0, 0]);
        assert!(v.blocked() && v.subtree());
        let v = verdict(&[0, 0, BLOCK_EXACT]);
        assert!(v.blocked() && !v.subtree());
    }

    #[test]
    fn below_matches_only_children() {
        assert!(!verdict(&[0, BLOCK_BELOW]).blocked());
        assert!(verdict(&[0, BLOCK_BELOW, 0]).blocked());
        assert!(!verdict(&[0, BLOCK_SUBTREE, ALLOW_BELOW, 0]).blocked());
        assert!(verdict(&[0, BLOCK_SUBTREE, ALLOW_BELOW]).blocked());
    }

    #[test]
    fn canaries_match_their_subtree_and_allow_still_wins() {
        let v = verdict(&[0, CANARY_NXDOMAIN, 0]);
        assert!(v.blocked() && v.canary() == CANARY_NXDOMAIN);
        assert!(verdict(&[0, CANARY_NODATA]).blocked());
        assert!(!verdict(&[0, CANARY_NXDOMAIN | ALLOW_EXACT]).blocked());
        assert_eq!(verdict(&[0, BLOCK_EXACT]).canary(), 0);
    }

    #[test]
    fn allow_beats_block() {
        assert!(!verdict(&[0, BLOCK_SUBTREE, ALLOW_EXACT]).blocked());
        assert!(!verdict(&[ALLOW_SUBTREE, BLOCK_SUBTREE, 0]).blocked());
        assert!(!verdict(&[0, BLOCK_EXACT | ALLOW_EXACT]).blocked());
        // An exact allow on a parent does not cover its children.
        assert!(verdict(&[BLOCK_SUBTREE, ALLOW_EXACT, 0]).blocked());
    }
}

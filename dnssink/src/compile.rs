//! Compiles rules into the table the kernel looks names up in (`dnssink_common::table`).
//!
//! Rules stream in from the lists and are kept as 16-byte entries: the name's hash, a second
//! independent hash, and the flags. Sorting them brings together the rules of one name
//! (merged, and counted as duplicates when repeated) and any two names that share a tag. Such
//! a collision is never silent: if the two names carry the same flags the shared slot serves
//! both, and otherwise the whole table is rebuilt with another seed for the hash chain.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use dnssink_common::{
    hash,
    rule::Verdict,
    table::{self, Bucket, Buckets, FLAG_MASK, SLOTS},
};

use crate::lists::Kind;

/// Target fill of the table: a bucketised cuckoo table with 8 slots and 2 choices fills to
/// about 95% before inserts start to fail.
const LOAD: f64 = 0.92;
const MAX_KICKS: usize = 1000;
const MAX_SEEDS: u64 = 8;

/// The compiled rules.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Header bucket, then the data buckets: what goes into the kernel's ARRAY map.
    pub table: Vec<Bucket>,
    /// Distinct rules by kind.
    pub by_kind: BTreeMap<Kind, usize>,
    /// Rules given more than once.
    pub duplicates: usize,
    /// Pairs of names that share a tag and the same flags, and so share a slot.
    pub shared_tags: usize,
    /// The seed the table was built with (0 unless a collision forced another).
    pub seed: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    tag: u64,
    check: u32,
    flags: u8,
}

/// Hands every rule, as a name and a kind, to the given function; called again if the table
/// must be rebuilt.
pub type Gather<'a> = dyn FnMut(&mut dyn FnMut(&str, Kind)) -> Result<()> + 'a;

impl RuleSet {
    /// Builds the table from the rules that `gather` produces.
    pub fn build(gather: &mut Gather) -> Result<RuleSet> {
        for seed in 0..MAX_SEEDS {
            let root = table::root(seed);
            let mut entries = Vec::with_capacity(1 << 16);
            let t = std::time::Instant::now();
            gather(&mut |name, kind| {
                let (h, check) = hash::name_and_check(root, name);
                entries.push(Entry {
                    tag: table::tag(h),
                    check,
                    flags: kind.flag(),
                })
            })?;
            tracing::debug!(
                "{} rules parsed and hashed in {:.3}s",
                entries.len(),
                t.elapsed().as_secs_f64()
            );
            let t = std::time::Instant::now();
            if let Some(set) = Self::try_seed(entries, seed)? {
                tracing::debug!("table built in {:.3}s", t.elapsed().as_secs_f64());
                return Ok(set);
            }
            tracing::info!("two rules share a hash with seed {seed}: rebuilding with another");
        }
        bail!("rules still collide after {MAX_SEEDS} hash seeds")
    }

    /// A table from rules given as text (for tests and small tools).
    pub fn from_rules<'a>(
        rules: impl IntoIterator<Item = (&'a str, Kind)> + Clone,
    ) -> Result<RuleSet> {
        RuleSet::build(&mut |push: &mut dyn FnMut(&str, Kind)| {
            for (n, k) in rules.clone() {
                push(n, k);
            }
            Ok(())
        })
    }

    fn try_seed(mut entries: Vec<Entry>, seed: u64) -> Result<Option<RuleSet>> {
        let mut set = RuleSet {
            seed,
            ..RuleSet::default()
        };
        let given = entries.len();
        entries.sort_unstable_by_key(|e| (e.tag, e.check));
        // Merge the rules of each name; then names that share a tag.
        let mut slots: Vec<u64> = Vec::with_capacity(entries.len());
        let mut distinct = 0usize;
        let mut i = 0;
        while i < entries.len() {
            let tag = entries[i].tag;
            let mut flags = 0u8;
            let mut names = 0;
            let mut first_flags = None;
            while i < entries.len() && entries[i].tag == tag {
                let check = entries[i].check;
                let mut f = 0u8;
                while i < entries.len() && entries[i].tag == tag && entries[i].check == check {
                    f |= entries[i].flags;
                    i += 1;
                }
                for bit in 0..8 {
                    if let Some(kind) = Kind::of_flag(f & (1 << bit)) {
                        *set.by_kind.entry(kind).or_default() += 1;
                        distinct += 1;
                    }
                }
                names += 1;
                match first_flags {
                    None => first_flags = Some(f),
                    Some(g) if g != f => return Ok(None),
                    Some(_) => set.shared_tags += 1,
                }
                flags |= f;
            }
            debug_assert!(names >= 1);
            slots.push(tag | flags as u64);
        }
        drop(entries);
        set.duplicates = given - distinct;
        let mut n = ((slots.len() as f64 / (SLOTS as f64 * LOAD)).ceil() as u64).max(1);
        loop {
            if let Some(t) = cuckoo(&slots, n) {
                set.table = t;
                break;
            }
            n = n + n / 20 + 1;
        }
        // The filter, after the data buckets: FILTER_BITS a name, in 512-bit blocks.
        let f = (slots.len() as u64 * table::FILTER_BITS)
            .div_ceil(512)
            .max(1);
        set.table.resize((1 + n + f) as usize, [0; SLOTS]);
        for &v in &slots {
            let (block, bits) = table::filter_place(v & !FLAG_MASK, n, f);
            for b in bits {
                set.table[block as usize][(b >> 6) as usize] |= 1 << (b & 63);
            }
        }
        let header = &mut set.table[table::HEADER as usize];
        header[table::H_MAGIC] = table::MAGIC;
        header[table::H_BUCKETS] = n;
        header[table::H_ROOT] = table::root(seed);
        header[table::H_RULES] = slots.len() as u64;
        header[table::H_FILTER] = f;
        Ok(Some(set))
    }

    /// Number of distinct rules.
    pub fn len(&self) -> usize {
        self.by_kind.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Occupied slots: names in the table.
    pub fn names(&self) -> u64 {
        self.table[0][table::H_RULES]
    }

    /// Bytes of the kernel table.
    pub fn table_bytes(&self) -> usize {
        self.table.len() * std::mem::size_of::<Bucket>()
    }

    /// The verdict for `name`, from the compiled table, by the lookup the kernel runs.
    pub fn verdict(&self, name: &str) -> Verdict {
        verdict_in(&self.table[..], name)
    }
}

/// The verdict for `name` (text, with or without its trailing dot) in the rule table `t`: the
/// compiled one, or the kernel's live one (`bpf::LiveTable`), by the lookup the kernel runs
/// (`table::lookup`).
pub fn verdict_in<T: Buckets + ?Sized>(t: &T, name: &str) -> Verdict {
    let Some(shape) = table::shape(t) else {
        return Verdict::default();
    };
    let labels: Vec<u64> = name
        .trim_end_matches('.')
        .split('.')
        .map(hash::label)
        .collect();
    table::lookup(
        shape.root,
        labels.len(),
        |i| labels[i],
        |h| table::flags(t, h, shape.buckets, shape.filter, |x| x),
    )
}

/// Places every slot value into `n` data buckets (after the header), or gives up.
fn cuckoo(slots: &[u64], n: u64) -> Option<Vec<Bucket>> {
    let mut t = vec![[0u64; SLOTS]; n as usize + 1];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let place = |t: &mut Vec<Bucket>, b: u32, v: u64| -> bool {
        match t[b as usize].iter().position(|&s| s == 0) {
            Some(i) => {
                t[b as usize][i] = v;
                true
            }
            None => false,
        }
    };
    for &v in slots {
        let (b1, b2) = table::buckets(v & !FLAG_MASK, n);
        if place(&mut t, b1, v) || place(&mut t, b2, v) {
            continue;
        }
        let mut item = v;
        let mut b = b1;
        let mut placed = false;
        for _ in 0..MAX_KICKS {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let slot = (rng % SLOTS as u64) as usize;
            std::mem::swap(&mut item, &mut t[b as usize][slot]);
            let (x1, x2) = table::buckets(item & !FLAG_MASK, n);
            b = if x1 == b { x2 } else { x1 };
            if place(&mut t, b, item) {
                placed = true;
                break;
            }
        }
        if !placed {
            return None;
        }
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{Options, collect};

    fn set(lists: &[(&str, Options)]) -> RuleSet {
        let parsed: Vec<_> = lists
            .iter()
            .map(|(t, o)| collect("t", t.as_bytes(), o).1)
            .collect();
        RuleSet::from_rules(parsed.iter().flatten().map(|(n, k, _)| (n.as_str(), *k))).unwrap()
    }

    #[test]
    fn merges_kinds_and_counts_duplicates() {
        let s = set(&[
            (
                "||ads.test^\n||ads.test^\n@@||ok.ads.test^\n",
                Options::block(),
            ),
            ("0.0.0.0 ads.test exact.test\n", Options::block()),
            ("exact.test\n", Options::allow()),
        ]);
        assert_eq!(s.names(), 3);
        assert_eq!(s.len(), 5);
        assert_eq!(s.duplicates, 1);
        assert!(s.verdict("x.ads.test").blocked());
        assert!(s.verdict("ADS.test").blocked());
        assert!(!s.verdict("a.ok.ads.test").blocked());
        assert!(!s.verdict("exact.test").blocked());
        assert!(!s.verdict("test").blocked());
    }

    /// The filter lets every listed name through (no lookup it skips could have matched), and
    /// few others.
    #[test]
    fn the_filter_has_no_false_negatives_and_few_false_positives() {
        let names: Vec<String> = (0..200_000).map(|i| format!("n{i}.example.test")).collect();
        let s = RuleSet::from_rules(names.iter().map(|n| (n.as_str(), Kind::BlockExact))).unwrap();
        let t = &s.table[..];
        let shape = table::shape(t).unwrap();
        assert!(shape.filter > 0);
        let passes = |name: &str| {
            let h = hash::name_and_check(shape.root, name).0;
            let (block, bits) = table::filter_place(table::tag(h), shape.buckets, shape.filter);
            table::filter_has(&t[block as usize], bits) == 1
        };
        assert!(names.iter().all(|n| passes(n)));
        let fp = (0..100_000)
            .filter(|i| passes(&format!("p{i}.example.test")))
            .count();
        assert!(fp < 5_000, "{fp} of 100000 unlisted names pass the filter");
        println!("filter false positives: {fp} of 100000");
    }

    #[test]
    fn a_million_names_in_about_ten_bytes_each() {
        let names: Vec<String> = (0..1_000_000)
            .map(|i| format!("n{i}.example{}.test", i % 97))
            .collect();
        let s = RuleSet::from_rules(names.iter().map(|n| (n.as_str(), Kind::BlockExact))).unwrap();
        assert_eq!(s.names(), 1_000_000);
        // 8.7 bytes of buckets and 1 of filter (the budget is 16).
        let per_rule = s.table_bytes() as f64 / 1e6;
        assert!(per_rule < 11.0, "{per_rule} bytes per rule");
        for n in names.iter().step_by(9973) {
            assert!(s.verdict(n).blocked(), "{n}");
            assert!(!s.verdict(&format!("x{n}")).blocked());
        }
    }

    #[test]
    fn a_collision_with_other_flags_reseeds() {
        // Force the situation with two names that share a tag by construction: search a small
        // space for a pair of names whose tags share the top bits, then check the builder's
        // merge logic on synthetic entries.
        let e = |tag, check, flags| Entry { tag, check, flags };
        let t = table::tag(0x1234_5678_9abc_def0);
        // Same tag, other name, same flags: one slot serves both.
        let s = RuleSet::try_seed(vec![e(t, 1, 1), e(t, 2, 1)], 0)
            .unwrap()
            .unwrap();
        assert_eq!((s.shared_tags, s.names()), (1, 1));
        // Same tag, other name, other flags: this seed is refused.
        assert!(
            RuleSet::try_seed(vec![e(t, 1, 1), e(t, 2, 4)], 0)
                .unwrap()
                .is_none()
        );
        // The same name twice is a duplicate, not a collision.
        let s = RuleSet::try_seed(vec![e(t, 1, 1), e(t, 1, 1)], 0)
            .unwrap()
            .unwrap();
        assert_eq!((s.duplicates, s.shared_tags), (1, 0));
    }

    #[test]
    fn empty_rules_give_an_empty_table() {
        let s = RuleSet::from_rules(std::iter::empty::<(&str, Kind)>()).unwrap();
        assert_eq!(
            (s.names(), s.table.len()),
            (0, 3),
            "header, one bucket, one filter block"
        );
        assert!(!s.verdict("a.test").blocked());
    }
}

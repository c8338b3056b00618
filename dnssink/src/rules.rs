//! Compiles parsed lists into the rule map: name hash -> rule flags.

use std::collections::{HashMap, hash_map::Entry};

use anyhow::{Result, bail};
use dnssink_common::hash;

use crate::lists::{Kind, List};

/// The rule map as the kernel gets it, and what went into it.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Name hash -> OR of the flags of every rule for that name.
    pub entries: HashMap<u64, u8>,
    /// Rules by kind, counting duplicates once.
    pub by_kind: HashMap<Kind, usize>,
    /// Rules given more than once.
    pub duplicates: usize,
}

impl RuleSet {
    /// Compiles `lists`. Two different names with one hash would make one rule act for the
    /// other: that is an error that names both, never silent.
    pub fn compile<'a>(lists: impl IntoIterator<Item = &'a List>) -> Result<RuleSet> {
        let mut set = RuleSet::default();
        let mut owner: HashMap<u64, (&'a str, &'a str, usize)> = HashMap::new();
        for list in lists {
            for rule in &list.rules {
                let h = hash::name(&rule.name);
                match owner.entry(h) {
                    Entry::Occupied(o) => {
                        let (name, path, line) = *o.get();
                        if name != rule.name {
                            bail!(
                                "hash collision: {name} ({path}:{line}) and {} ({}:{}) share the key {h:#018x}",
                                rule.name,
                                list.path,
                                rule.line
                            );
                        }
                    }
                    Entry::Vacant(v) => {
                        v.insert((&rule.name, &list.path, rule.line));
                    }
                }
                let flags = set.entries.entry(h).or_default();
                if *flags & rule.kind.flag() != 0 {
                    set.duplicates += 1;
                } else {
                    *set.by_kind.entry(rule.kind).or_default() += 1;
                }
                *flags |= rule.kind.flag();
            }
        }
        Ok(set)
    }

    /// Number of rules, duplicates counted once.
    pub fn len(&self) -> usize {
        self.by_kind.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The verdict for `name`, computed the way the BPF program computes it.
    pub fn verdict(&self, name: &str) -> dnssink_common::rule::Verdict {
        let mut v = dnssink_common::rule::Verdict::default();
        let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
        let mut h = hash::ROOT;
        for (i, l) in labels.iter().enumerate().rev() {
            h = hash::combine(h, hash::label(l));
            if let Some(&f) = self.entries.get(&h) {
                v.visit(f, i == 0);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{Role, parse};

    #[test]
    fn merges_kinds_and_counts_duplicates() {
        let block = parse(
            "b",
            b"||ads.test^\n||ads.test^\n@@||ok.ads.test^\n",
            Role::Block,
        );
        let hosts = parse("h", b"0.0.0.0 ads.test exact.test\n", Role::Block);
        let allow = parse("a", b"exact.test\n", Role::Allow);
        let set = RuleSet::compile([&block, &hosts, &allow]).unwrap();
        assert_eq!(set.entries.len(), 3);
        assert_eq!(set.len(), 5);
        assert_eq!(set.duplicates, 1);
        assert!(set.verdict("x.ads.test").blocked());
        assert!(set.verdict("ADS.test").blocked());
        assert!(!set.verdict("a.ok.ads.test").blocked());
        assert!(!set.verdict("exact.test").blocked());
        assert!(!set.verdict("test").blocked());
    }
}

//! dnssink's userspace: list parsing, rule compilation, and the loader of the XDP program.
//!
//! The kernel integration tests in `tests/` drive the same [`bpf::Sinkhole`] that the CLI
//! uses.

pub mod bpf;
pub mod lists;
pub mod response;
pub mod rules;

use std::path::PathBuf;

use anyhow::Result;

use crate::{
    lists::{List, Role},
    rules::RuleSet,
};

/// Every list of a run, parsed and compiled; built whole before anything touches the kernel.
pub struct Loaded {
    pub lists: Vec<List>,
    pub rules: RuleSet,
}

/// Reads and compiles the block and allow lists.
pub fn load_lists(blocklists: &[PathBuf], allowlists: &[PathBuf]) -> Result<Loaded> {
    let mut lists = Vec::new();
    for (paths, role, what) in [
        (blocklists, Role::Block, "blocklist"),
        (allowlists, Role::Allow, "allowlist"),
    ] {
        for p in paths {
            let l =
                lists::load(p, role).map_err(|e| e.context(format!("{what} {}", p.display())))?;
            lists.push(l);
        }
    }
    let rules = RuleSet::compile(&lists)?;
    Ok(Loaded { lists, rules })
}

impl Loaded {
    /// One line: rules loaded, and lines skipped with why.
    pub fn summary(&self) -> String {
        use lists::Kind::*;
        let k = |kind| self.rules.by_kind.get(&kind).copied().unwrap_or(0);
        let mut s = format!(
            "{} rules from {} list{} ({} exact, {} subtree, {} allow)",
            self.rules.len(),
            self.lists.len(),
            if self.lists.len() == 1 { "" } else { "s" },
            k(BlockExact),
            k(BlockSubtree),
            k(AllowExact) + k(AllowSubtree),
        );
        let mut skipped = std::collections::BTreeMap::new();
        for l in &self.lists {
            for (why, n) in &l.skipped {
                *skipped.entry(*why).or_insert(0usize) += n;
            }
        }
        let total: usize = skipped.values().sum();
        if total == 0 {
            s.push_str("; no lines skipped");
        } else {
            let why: Vec<String> = skipped.iter().map(|(w, n)| format!("{n} {w}")).collect();
            s.push_str(&format!("; {total} lines skipped: {}", why.join(", ")));
        }
        if self.rules.duplicates > 0 {
            s.push_str(&format!("; {} duplicates", self.rules.duplicates));
        }
        s
    }
}

//! dnssink's userspace: list parsing, rule compilation, and the loader of the XDP program.
//!
//! The kernel integration tests in `tests/` drive the same [`bpf::Sinkhole`] that the CLI
//! uses.

pub mod bpf;
pub mod cli;
pub mod commands;
pub mod compile;
pub mod config_file;
pub mod daemon;
pub mod host;
pub mod instance;
pub mod iplist;
pub mod lists;
pub mod pin;
pub mod plan;
pub mod qlog;
pub mod response;
pub mod state;

use std::path::PathBuf;

use anyhow::Result;

use crate::{
    compile::RuleSet,
    lists::{Options, Role, Summary},
};

/// A list to load, and how to read it.
#[derive(Clone, Debug)]
pub struct ListSpec {
    pub path: PathBuf,
    pub opts: Options,
}

/// Every list of a run, parsed and compiled; built whole before anything touches the kernel.
pub struct Loaded {
    pub lists: Vec<Summary>,
    pub rules: RuleSet,
}

/// Names that browsers and operating systems look up to decide whether to bypass the local
/// resolver, and the answer that keeps them on it.
pub const CANARIES: &[(&str, lists::Kind)] = &[
    // Firefox turns DNS over HTTPS off when this name does not resolve.
    ("use-application-dns.net", lists::Kind::CanaryNxdomain),
    // iCloud Private Relay stays off.
    ("mask.icloud.com", lists::Kind::CanaryNxdomain),
    ("mask-h2.icloud.com", lists::Kind::CanaryNxdomain),
    // RFC 9462 discovery of designated (encrypted) resolvers finds none.
    ("resolver.arpa", lists::Kind::CanaryNodata),
];

/// Reads the lists and compiles them into one table, with the [`CANARIES`] unless
/// `canaries` is false. With `strict`, any skipped line is an error that names its file and
/// line.
pub fn load_lists(specs: &[ListSpec], strict: bool, canaries: bool) -> Result<Loaded> {
    let mut lists = Vec::new();
    let mut first_pass = true;
    let rules = RuleSet::build(&mut |push: &mut dyn FnMut(&str, lists::Kind)| {
        if canaries {
            for (name, kind) in CANARIES {
                push(name, *kind);
            }
        }
        for spec in specs {
            let what = match spec.opts.role {
                Role::Block => "blocklist",
                Role::Allow => "allowlist",
            };
            let sum = lists::load(&spec.path, &spec.opts, &mut |r| push(r.name, r.kind))
                .map_err(|e| e.context(format!("{what} {}", spec.path.display())))?;
            if strict {
                sum.check_strict()?;
            }
            if first_pass {
                lists.push(sum);
            }
        }
        first_pass = false;
        Ok(())
    })?;
    Ok(Loaded { lists, rules })
}

impl Loaded {
    /// One line: rules loaded, and lines skipped with why.
    pub fn summary(&self) -> String {
        use lists::Kind::*;
        let k = |kinds: &[lists::Kind]| -> usize {
            kinds
                .iter()
                .map(|kind| self.rules.by_kind.get(kind).copied().unwrap_or(0))
                .sum()
        };
        let canaries = k(&[CanaryNxdomain, CanaryNodata]);
        let mut s = format!(
            "{} rules from {} list{} ({} exact, {} subtree, {} allow)",
            self.rules.len() - canaries,
            self.lists.len(),
            if self.lists.len() == 1 { "" } else { "s" },
            k(&[BlockExact]),
            k(&[BlockSubtree, BlockBelow]),
            k(&[AllowExact, AllowSubtree, AllowBelow]),
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
        if canaries > 0 {
            s.push_str(&format!("; {canaries} canaries"));
        }
        s
    }
}

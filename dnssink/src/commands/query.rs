//! `dnssink query`: is a name blocked, and which rules say so.
//!
//! The verdict comes from the rule table the kernel looks names up in, by the kernel's own
//! lookup (`table::lookup`): for a running or kept instance, its live table, mapped from the
//! kernel; with `--blocklist`, the table those lists compile to. The matching rules come from
//! the lists, read again.

use std::fmt::Write as _;

use anyhow::Result;
use dnssink_common::rule::Verdict;

use crate::{
    ListSpec,
    bpf::LiveTable,
    cli::QueryArgs,
    compile::verdict_in,
    instance::InstanceId,
    lists::{self, Kind},
};

/// A rule that matches a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub path: String,
    pub line: usize,
    pub text: String,
    pub rule: String,
    pub kind: Kind,
}

pub fn run(args: QueryArgs) -> Result<()> {
    let lists = args.lists.plan();
    let out = if lists.is_empty() {
        let id = InstanceId::named_or_only(args.iface.as_deref())?;
        let plan = id.state()?.plan;
        let live = LiveTable::open(&id.map_pin(dnssink_common::maps::TABLES))?;
        explain(|n| verdict_in(&live, n), &plan.lists.specs(), &args.names)?
    } else {
        let loaded = lists.load()?;
        explain(|n| loaded.rules.verdict(n), &lists.specs(), &args.names)?
    };
    print!("{out}");
    Ok(())
}

/// Whether each name is blocked (`verdict`, from a rule table), and every rule of the lists
/// that matches it.
pub fn explain(
    verdict: impl Fn(&str) -> Verdict,
    specs: &[ListSpec],
    names: &[String],
) -> Result<String> {
    let wanted: Vec<(String, Vec<String>)> = names
        .iter()
        .map(|n| {
            let n = lists::normalise(n).unwrap_or_else(|_| n.to_ascii_lowercase());
            let labels: Vec<&str> = n.split('.').collect();
            let suffixes = (0..labels.len()).map(|i| labels[i..].join(".")).collect();
            (n, suffixes)
        })
        .collect();
    let mut found: Vec<Vec<Match>> = vec![Vec::new(); names.len()];
    for spec in specs {
        let path = spec.path.display().to_string();
        lists::load(&spec.path, &spec.opts, &mut |r| {
            for (i, (name, suffixes)) in wanted.iter().enumerate() {
                let Some(depth) = suffixes.iter().position(|s| s == r.name) else {
                    continue;
                };
                let whole = depth == 0 && r.name == name;
                let applies = match r.kind {
                    Kind::BlockExact | Kind::AllowExact => whole,
                    Kind::BlockSubtree | Kind::AllowSubtree => true,
                    Kind::BlockBelow | Kind::AllowBelow => !whole,
                    Kind::CanaryNxdomain | Kind::CanaryNodata => true,
                };
                if applies {
                    found[i].push(Match {
                        path: path.clone(),
                        line: r.line,
                        text: r.text.to_string(),
                        rule: r.name.to_string(),
                        kind: r.kind,
                    });
                }
            }
        })?;
    }
    let mut out = String::new();
    for ((name, _), matches) in wanted.iter().zip(&found) {
        let v = verdict(name);
        let said = if v.blocked() {
            "blocked"
        } else if v.block() {
            "allowed (an allow rule beats the block)"
        } else {
            "not blocked"
        };
        writeln!(out, "{name}: {said}")?;
        for m in matches {
            writeln!(
                out,
                "  {}:{}: `{}` ({} {})",
                m.path, m.line, m.text, m.kind, m.rule
            )?;
        }
    }
    Ok(out)
}

//! `dnssink query`: is a name blocked, and which rules say so.

use std::fmt::Write as _;

use anyhow::Result;

use crate::{
    ListSpec, Loaded,
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

/// Whether each name is blocked (from the compiled table, as the kernel sees it), and every
/// rule that matches it (from the lists).
pub fn explain(loaded: &Loaded, specs: &[ListSpec], names: &[String]) -> Result<String> {
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
        let v = loaded.rules.verdict(name);
        let verdict = if v.blocked() {
            "blocked"
        } else if v.block() {
            "allowed (an allow rule beats the block)"
        } else {
            "not blocked"
        };
        writeln!(out, "{name}: {verdict}")?;
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

//! Adblock-style lists: `||name^` (the name and below), `|name^` (exactly), `@@` (allow).
//! Cosmetic and URL rules are no DNS rules, and are skipped.

use super::{Dialect, Format, Kind, Skip};

pub struct Adblock;

impl Dialect for Adblock {
    fn format(&self) -> Format {
        Format::Adblock
    }

    fn claims(&self, text: &str) -> bool {
        text.starts_with('|') || text.starts_with("@@") || text.ends_with('^')
    }

    fn is_structure(&self, line: &[u8]) -> bool {
        line.starts_with(b"!") || line.starts_with(b"[") || line.starts_with(b"#")
    }

    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
        line(text).map(|(d, k)| emit(d, k))
    }
}

fn line(line: &str) -> Result<(&str, Kind), Skip> {
    if line.contains("##") || line.contains("#@#") || line.contains("#?#") {
        return Err(Skip::AdblockNotDns);
    }
    let (body, allow) = match line.strip_prefix("@@") {
        Some(b) => (b, true),
        None => (line, false),
    };
    let body = match body.split_once('$') {
        Some((b, "important")) => b,
        Some(_) => return Err(Skip::AdblockModifier),
        None => body,
    };
    let (body, subtree) = match body.strip_prefix("||") {
        Some(b) => (b, true),
        None => match body.strip_prefix('|') {
            Some(b) => (b, false),
            None => (body, true),
        },
    };
    let name = body.strip_suffix('^').unwrap_or(body);
    if name.contains(['/', '*', '|', '^', ':', '?']) {
        return Err(Skip::AdblockNotDns);
    }
    let kind = match (allow, subtree) {
        (false, false) => Kind::BlockExact,
        (false, true) => Kind::BlockSubtree,
        (true, false) => Kind::AllowExact,
        (true, true) => Kind::AllowSubtree,
    };
    Ok((name, kind))
}

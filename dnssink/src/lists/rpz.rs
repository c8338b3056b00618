//! Response policy zones (RPZ): `name CNAME .` (exactly), `*.name CNAME .` (below the name),
//! `CNAME rpz-passthru.` (allow). The zone's own records are structure, not rules.

use super::{Dialect, Format, Kind, Skip};

pub struct Rpz;

impl Dialect for Rpz {
    fn format(&self) -> Format {
        Format::Rpz
    }

    fn claims(&self, text: &str) -> bool {
        text.to_ascii_uppercase()
            .split_whitespace()
            .any(|w| w == "CNAME")
            || text.starts_with('$')
    }

    fn is_structure(&self, line: &[u8]) -> bool {
        line.starts_with(b";")
            || line.starts_with(b"$")
            || line.starts_with(b"#")
            || line.starts_with(b"@")
            || line.starts_with(b"(")
            || line.starts_with(b")")
            || {
                let text = String::from_utf8_lossy(line).to_ascii_uppercase();
                let mut t = text.split_whitespace().skip(1);
                t.any(|w| w == "SOA" || w == "NS")
            }
    }

    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
        line(text).map(|(d, k)| emit(d, k))
    }
}

/// `name [ttl] [IN] CNAME .` blocks the name (`*.name`: the names below it); `CNAME *.` is
/// NODATA, a block too; `CNAME rpz-passthru.` allows.
fn line(line: &str) -> Result<(&str, Kind), Skip> {
    let line = line.split_once(';').map_or(line, |(l, _)| l);
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("CNAME"))
        .ok_or(Skip::RpzAction)?;
    if at == 0 || at + 2 != words.len() {
        return Err(Skip::Unrecognised);
    }
    let owner = words[0];
    let allow = match words[at + 1].to_ascii_lowercase().as_str() {
        "." | "*." => false,
        "rpz-passthru." => true,
        _ => return Err(Skip::RpzAction),
    };
    let (name, below) = match owner.strip_prefix("*.") {
        Some(n) => (n, true),
        None => (owner, false),
    };
    let kind = match (allow, below) {
        (false, false) => Kind::BlockExact,
        (false, true) => Kind::BlockBelow,
        (true, false) => Kind::AllowExact,
        (true, true) => Kind::AllowBelow,
    };
    Ok((name, kind))
}

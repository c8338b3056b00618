//! Unbound configuration: `local-zone: "name." always_nxdomain` (or another type that answers
//! in place of the zone), the name and below.

use super::{Dialect, Format, Kind, Skip, strip_inline_comment};

pub struct Unbound;

impl Dialect for Unbound {
    fn format(&self) -> Format {
        Format::Unbound
    }

    fn claims(&self, text: &str) -> bool {
        text.starts_with("local-zone:") || text.starts_with("server:")
    }

    fn is_structure(&self, line: &[u8]) -> bool {
        line.starts_with(b"#")
            || line.starts_with(b"server:")
            || line.starts_with(b"local-data:")
            || line.starts_with(b"local-data-ptr:")
    }

    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
        line(text).map(|d| emit(d, Kind::BlockSubtree))
    }
}

/// Unbound local-zone types that answer in place of the real zone.
const UNBOUND_BLOCKING: &[&str] = &[
    "static",
    "deny",
    "refuse",
    "redirect",
    "inform_deny",
    "always_refuse",
    "always_nxdomain",
    "always_nodata",
    "always_deny",
    "always_null",
];

fn line(line: &str) -> Result<&str, Skip> {
    let rest = strip_inline_comment(line)
        .strip_prefix("local-zone:")
        .ok_or(Skip::Unrecognised)?;
    let mut words = rest.split_whitespace();
    let name = words.next().ok_or(Skip::Unrecognised)?.trim_matches('"');
    let kind = words.next().ok_or(Skip::Unrecognised)?.trim_matches('"');
    if !UNBOUND_BLOCKING.contains(&kind.to_ascii_lowercase().as_str()) {
        return Err(Skip::UnboundNotBlocking);
    }
    Ok(name)
}

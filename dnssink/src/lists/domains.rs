//! Plain domain lists: one name a line, that name exactly.

use super::{Dialect, Format, Kind, Skip, strip_inline_comment};

pub struct Domains;

impl Dialect for Domains {
    fn format(&self) -> Format {
        Format::Domains
    }

    /// The fallback: any line the others do not claim (but an adblock-style `[header]`).
    fn claims(&self, text: &str) -> bool {
        !text.starts_with('[')
    }

    fn widens_with_subdomains(&self) -> bool {
        true
    }

    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
        line(text).map(|d| emit(d, Kind::BlockExact))
    }
}

pub(super) fn line(line: &str) -> Result<&str, Skip> {
    let d = strip_inline_comment(line);
    if d.split_whitespace().count() != 1 {
        return Err(Skip::Unrecognised);
    }
    Ok(d)
}

//! Wildcard lists: `*.name` blocks the name and below; a bare name, exactly.

use super::{Dialect, Format, Kind, Skip};

pub struct Wildcard;

impl Dialect for Wildcard {
    fn format(&self) -> Format {
        Format::Wildcard
    }

    fn claims(&self, text: &str) -> bool {
        text.starts_with("*.")
    }

    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
        line(text).map(|(d, k)| emit(d, k))
    }
}

fn line(line: &str) -> Result<(&str, Kind), Skip> {
    let d = super::domains::line(line)?;
    match d.strip_prefix("*.") {
        Some(d) => Ok((d, Kind::BlockSubtree)),
        None => Ok((d, Kind::BlockExact)),
    }
}

//! dnsmasq configuration: `address=/name/.../…`, `local=/name/`, `server=/name/…`, each
//! name and below.

use super::{Dialect, Format, Kind, Skip, strip_inline_comment};

pub struct Dnsmasq;

const PREFIXES: [&str; 3] = ["address=/", "local=/", "server=/"];

impl Dialect for Dnsmasq {
    fn format(&self) -> Format {
        Format::Dnsmasq
    }

    fn claims(&self, text: &str) -> bool {
        PREFIXES.iter().any(|p| text.starts_with(p))
    }

    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
        line(text, emit)
    }
}

/// `address=/a/b/0.0.0.0`, `local=/a/`, `server=/a/b/` and `server=/a/1.2.3.4`: every name
/// between the slashes.
fn line(line: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
    let line = strip_inline_comment(line);
    let rest = PREFIXES
        .iter()
        .find_map(|p| line.strip_prefix(p))
        .ok_or(Skip::Unrecognised)?;
    // The last field is the value (an address, an upstream, `#`, or empty).
    let (names, _value) = rest.rsplit_once('/').ok_or(Skip::Unrecognised)?;
    let mut any = false;
    for name in names.split('/').filter(|n| !n.is_empty()) {
        any = true;
        emit(name, Kind::BlockSubtree);
    }
    if any { Ok(()) } else { Err(Skip::Unrecognised) }
}

//! Hosts files: `0.0.0.0 name [name...]`, each name exactly (the local names every hosts file
//! has are skipped).

use super::{Dialect, Format, Kind, Skip, strip_inline_comment};

use std::net::IpAddr;

pub struct Hosts;

impl Dialect for Hosts {
    fn format(&self) -> Format {
        Format::Hosts
    }

    fn claims(&self, text: &str) -> bool {
        let mut words = text.split_whitespace();
        words.next().is_some_and(|w| w.parse::<IpAddr>().is_ok()) && words.next().is_some()
    }

    fn widens_with_subdomains(&self) -> bool {
        true
    }

    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
        line(text, emit)
    }
}

fn line(line: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip> {
    let mut fields = strip_inline_comment(line).split_whitespace();
    let addr = fields.next().ok_or(Skip::Unrecognised)?;
    if addr.parse::<IpAddr>().is_err() {
        return Err(Skip::Unrecognised);
    }
    let mut names = 0;
    let mut local = 0;
    for name in fields {
        names += 1;
        if LOCAL_HOSTS
            .iter()
            .any(|l| l.len() == name.len() && l.eq_ignore_ascii_case(name))
        {
            local += 1;
            continue;
        }
        emit(name, Kind::BlockExact);
    }
    match (names, local) {
        (0, _) => Err(Skip::Unrecognised),
        (n, l) if n == l => Err(Skip::LocalHost),
        _ => Ok(()),
    }
}

const LOCAL_HOSTS: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

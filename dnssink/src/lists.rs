//! Blocklist and allowlist files: hosts, plain domains, adblock and wildcard formats,
//! detected from content. Each entry becomes a [`Rule`]; every line that is not used is
//! counted by the reason it was skipped.

use std::{collections::BTreeMap, fmt, net::IpAddr, path::Path};

use anyhow::{Context as _, Result};

/// How a list is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `0.0.0.0 name [name...]`: each name exactly.
    Hosts,
    /// One name a line: that name exactly.
    Domains,
    /// `||name^` (the name and below), `@@||name^` (allow), `|name^` (exactly).
    Adblock,
    /// `*.name`: the name and below.
    Wildcard,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Hosts => "hosts",
            Format::Domains => "domains",
            Format::Adblock => "adblock",
            Format::Wildcard => "wildcard",
        })
    }
}

/// What the file is for: in an allowlist, every entry allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Block,
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    BlockExact,
    BlockSubtree,
    AllowExact,
    AllowSubtree,
}

impl Kind {
    /// The rule-map flag for this kind.
    pub const fn flag(self) -> u8 {
        use dnssink_common::rule::*;
        match self {
            Kind::BlockExact => BLOCK_EXACT,
            Kind::BlockSubtree => BLOCK_SUBTREE,
            Kind::AllowExact => ALLOW_EXACT,
            Kind::AllowSubtree => ALLOW_SUBTREE,
        }
    }

    fn with_role(self, role: Role) -> Kind {
        match (role, self) {
            (Role::Allow, Kind::BlockExact) => Kind::AllowExact,
            (Role::Allow, Kind::BlockSubtree) => Kind::AllowSubtree,
            _ => self,
        }
    }
}

/// One rule: a normalised name (lower case, ASCII/punycode, no trailing dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub kind: Kind,
    /// 1-based line in its file.
    pub line: usize,
}

/// Why a line gave no rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// Not a valid domain name: bad characters, a label over 63 bytes, over 253 in all.
    InvalidName,
    /// A hosts entry for the local host itself (`localhost`, `broadcasthost`...).
    LocalHost,
    /// An adblock rule with a modifier other than `$important`.
    AdblockModifier,
    /// An adblock rule with a path, a glob or a cosmetic part: not a DNS rule.
    AdblockNotDns,
    /// A line the format does not describe.
    Unrecognised,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Skip::InvalidName => "invalid name",
            Skip::LocalHost => "local host name",
            Skip::AdblockModifier => "adblock modifier",
            Skip::AdblockNotDns => "adblock rule that is not for DNS",
            Skip::Unrecognised => "unrecognised line",
        })
    }
}

/// A parsed list.
#[derive(Debug)]
pub struct List {
    pub path: String,
    pub format: Format,
    pub rules: Vec<Rule>,
    pub skipped: BTreeMap<Skip, usize>,
}

impl List {
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }
}

/// Reads and parses a list file.
pub fn load(path: &Path, role: Role) -> Result<List> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(parse(&path.display().to_string(), &bytes, role))
}

/// Parses the bytes of a list. Never fails: what it cannot use it counts in `skipped`.
pub fn parse(path: &str, bytes: &[u8], role: Role) -> List {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let lines: Vec<(usize, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, trim(l)))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let format = detect(lines.iter().map(|(_, l)| *l));
    let mut list = List {
        path: path.to_string(),
        format,
        rules: Vec::new(),
        skipped: BTreeMap::new(),
    };
    for (n, raw) in lines {
        if is_comment(raw, format) {
            continue;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            *list.skipped.entry(Skip::InvalidName).or_default() += 1;
            continue;
        };
        let mut emit = |name: &str, kind: Kind| match normalise(name) {
            Ok(name) => list.rules.push(Rule {
                name,
                kind: kind.with_role(role),
                line: n,
            }),
            Err(skip) => *list.skipped.entry(skip).or_default() += 1,
        };
        let result = match format {
            Format::Hosts => hosts_line(line, &mut emit),
            Format::Domains => domain_line(line).map(|d| emit(d, Kind::BlockExact)),
            Format::Wildcard => wildcard_line(line).map(|(d, k)| emit(d, k)),
            Format::Adblock => adblock_line(line).map(|(d, k)| emit(d, k)),
        };
        if let Err(skip) = result {
            *list.skipped.entry(skip).or_default() += 1;
        }
    }
    list
}

fn trim(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

fn is_comment(line: &[u8], format: Format) -> bool {
    line.starts_with(b"#")
        || (format == Format::Adblock && (line.starts_with(b"!") || line.starts_with(b"[")))
}

/// Detects the format from the first lines that are not comments.
fn detect<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Format {
    let mut votes = [0usize; 4];
    for line in lines
        .filter(|l| !l.starts_with(b"#") && !l.starts_with(b"!") && !l.starts_with(b"["))
        .take(100)
    {
        let text = String::from_utf8_lossy(line);
        let first = text.split_whitespace().next().unwrap_or("");
        let idx = if text.starts_with("||") || text.starts_with("@@") || text.ends_with('^') {
            2
        } else if first.parse::<IpAddr>().is_ok() && text.split_whitespace().count() > 1 {
            0
        } else if text.starts_with("*.") {
            3
        } else {
            1
        };
        votes[idx] += 1;
    }
    let best = (0..4).max_by_key(|&i| (votes[i], i == 1)).unwrap_or(1);
    [
        Format::Hosts,
        Format::Domains,
        Format::Adblock,
        Format::Wildcard,
    ][best]
}

fn strip_inline_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(l, _)| l).trim()
}

fn hosts_line(line: &str, emit: &mut impl FnMut(&str, Kind)) -> Result<(), Skip> {
    let mut fields = strip_inline_comment(line).split_whitespace();
    let addr = fields.next().ok_or(Skip::Unrecognised)?;
    if addr.parse::<IpAddr>().is_err() {
        return Err(Skip::Unrecognised);
    }
    let mut any = false;
    for name in fields {
        any = true;
        if LOCAL_HOSTS.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        emit(name, Kind::BlockExact);
    }
    if any { Ok(()) } else { Err(Skip::Unrecognised) }
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

fn domain_line(line: &str) -> Result<&str, Skip> {
    let d = strip_inline_comment(line);
    if d.split_whitespace().count() != 1 {
        return Err(Skip::Unrecognised);
    }
    Ok(d)
}

fn wildcard_line(line: &str) -> Result<(&str, Kind), Skip> {
    let d = domain_line(line)?;
    match d.strip_prefix("*.") {
        Some(d) => Ok((d, Kind::BlockSubtree)),
        None => Ok((d, Kind::BlockExact)),
    }
}

fn adblock_line(line: &str) -> Result<(&str, Kind), Skip> {
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

/// Normalises a domain name: ASCII lower case, punycode for Unicode, no trailing dot, and
/// checks it: labels of 1 to 63 letters, digits, `-` or `_`, 253 characters in all.
pub fn normalise(name: &str) -> Result<String, Skip> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let ascii = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(name).map_err(|_| Skip::InvalidName)?
    };
    let ok = !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(ascii)
    } else {
        Err(Skip::InvalidName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str, role: Role) -> List {
        parse("t", text.as_bytes(), role)
    }

    fn names(l: &List) -> Vec<(&str, Kind)> {
        l.rules.iter().map(|r| (r.name.as_str(), r.kind)).collect()
    }

    #[test]
    fn hosts() {
        let l = rules(
            "# c\n127.0.0.1 localhost\n0.0.0.0 Ads.Example.com tracker.test # x\r\n:: v6.test\n",
            Role::Block,
        );
        assert_eq!(l.format, Format::Hosts);
        assert_eq!(
            names(&l),
            [
                ("ads.example.com", Kind::BlockExact),
                ("tracker.test", Kind::BlockExact),
                ("v6.test", Kind::BlockExact)
            ]
        );
        assert_eq!(l.rules[2].line, 4);
        assert_eq!(l.skipped_total(), 0);
    }

    #[test]
    fn domains_with_bom_crlf_and_bad_names() {
        let l = rules(
            "\u{feff}# t\r\nads.test\r\nbad_name-ok.test\r\nno way\r\n-\u{0}x.test\r\n",
            Role::Block,
        );
        assert_eq!(l.format, Format::Domains);
        assert_eq!(
            names(&l),
            [
                ("ads.test", Kind::BlockExact),
                ("bad_name-ok.test", Kind::BlockExact)
            ]
        );
        assert_eq!(l.skipped[&Skip::Unrecognised], 1);
        assert_eq!(l.skipped[&Skip::InvalidName], 1);
    }

    #[test]
    fn adblock() {
        let l = rules(
            "! c\n[Adblock Plus 2.0]\n||ads.test^\n@@||ok.ads.test^\n|exact.test^\n||imp.test^$important\n||x.test^$third-party\n||a.test/path^\nexample.com##.ad\n@@||aax-*.amazon.*^\n",
            Role::Block,
        );
        assert_eq!(l.format, Format::Adblock);
        assert_eq!(
            names(&l),
            [
                ("ads.test", Kind::BlockSubtree),
                ("ok.ads.test", Kind::AllowSubtree),
                ("exact.test", Kind::BlockExact),
                ("imp.test", Kind::BlockSubtree)
            ]
        );
        assert_eq!(l.skipped[&Skip::AdblockModifier], 1);
        assert_eq!(l.skipped[&Skip::AdblockNotDns], 3);
    }

    #[test]
    fn allowlist_role_turns_entries_into_allows() {
        let l = rules("ok.test\n", Role::Allow);
        assert_eq!(names(&l), [("ok.test", Kind::AllowExact)]);
        let l = rules("||ok.test^\n", Role::Allow);
        assert_eq!(names(&l), [("ok.test", Kind::AllowSubtree)]);
    }

    #[test]
    fn wildcard() {
        let l = rules("*.ads.test\n*.b.test\n", Role::Block);
        assert_eq!(l.format, Format::Wildcard);
        assert_eq!(names(&l)[0], ("ads.test", Kind::BlockSubtree));
    }

    #[test]
    fn names_are_checked_and_punycoded() {
        assert_eq!(
            normalise("Bücher.Example.").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(normalise(&"a".repeat(63)).unwrap().len(), 63);
        assert!(normalise(&"a".repeat(64)).is_err());
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert!(normalise(&long).is_ok());
        assert!(normalise(&format!("{long}d")).is_err());
        assert!(normalise("a..b").is_err());
        assert!(normalise("a b").is_err());
        assert!(normalise("").is_err());
    }

    #[test]
    fn binary_garbage_is_skipped_not_fatal() {
        let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let l = parse("junk", &junk, Role::Block);
        assert!(l.rules.len() < 5);
    }
}

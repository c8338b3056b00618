//! Blocklist and allowlist files in the formats users have: hosts, plain domains, adblock,
//! wildcard, dnsmasq, unbound and RPZ, detected from content or forced with `--format`.
//!
//! Parsing streams: each rule is handed to a visitor as it is read, and nothing of the file
//! is kept but counts, so that millions of rules load in little memory. Every line that gives
//! no rule is counted by the reason it was skipped, and the first of them is kept with its
//! line number for `--strict`.

use std::{collections::BTreeMap, fmt, path::Path};

use anyhow::{Context as _, Result, bail};

mod adblock;
mod dnsmasq;
mod domains;
mod hosts;
mod normalise;
mod rpz;
mod unbound;
mod wildcard;

pub use normalise::{normalise, normalise_into};

/// How a list is written.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `0.0.0.0 name [name...]`: each name exactly.
    Hosts,
    /// One name a line: that name exactly.
    Domains,
    /// `||name^` (the name and below), `|name^` (exactly), `@@||name^` (allow).
    Adblock,
    /// `*.name`: the name and below.
    Wildcard,
    /// `address=/name/.../…`, `local=/name/`, `server=/name/…`: each name and below.
    Dnsmasq,
    /// `local-zone: "name." always_nxdomain` (or another blocking type): the name and below.
    Unbound,
    /// RPZ zone file: `name CNAME .` (exactly), `*.name CNAME .` (below the name).
    Rpz,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = clap::ValueEnum::to_possible_value(self).expect("no skipped variants");
        f.write_str(v.get_name())
    }
}

/// What the file is for: in an allowlist, every entry allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Block,
    Allow,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Block => "block",
            Role::Allow => "allow",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    BlockExact,
    BlockSubtree,
    BlockBelow,
    AllowExact,
    AllowSubtree,
    AllowBelow,
    /// A built-in canary (the name and below), answered NXDOMAIN.
    CanaryNxdomain,
    /// A built-in canary (the name and below), answered NODATA.
    CanaryNodata,
}

impl Kind {
    /// Every kind and its flag bit in the rule table: the one mapping, read both ways.
    const FLAGS: [(Kind, u8); 8] = {
        use dnssink_common::rule::*;
        [
            (Kind::BlockExact, BLOCK_EXACT),
            (Kind::BlockSubtree, BLOCK_SUBTREE),
            (Kind::BlockBelow, BLOCK_BELOW),
            (Kind::AllowExact, ALLOW_EXACT),
            (Kind::AllowSubtree, ALLOW_SUBTREE),
            (Kind::AllowBelow, ALLOW_BELOW),
            (Kind::CanaryNxdomain, CANARY_NXDOMAIN),
            (Kind::CanaryNodata, CANARY_NODATA),
        ]
    };

    /// The rule-map flag for this kind.
    pub const fn flag(self) -> u8 {
        let mut i = 0;
        while i < Self::FLAGS.len() {
            if Self::FLAGS[i].0 as u8 == self as u8 {
                return Self::FLAGS[i].1;
            }
            i += 1;
        }
        0
    }

    /// The kind whose flag is `flag` (a single bit).
    pub fn of_flag(flag: u8) -> Option<Kind> {
        Self::FLAGS
            .iter()
            .find(|(_, f)| *f == flag)
            .map(|(k, _)| *k)
    }

    fn with_role(self, role: Role) -> Kind {
        match (role, self) {
            (Role::Allow, Kind::BlockExact) => Kind::AllowExact,
            (Role::Allow, Kind::BlockSubtree) => Kind::AllowSubtree,
            (Role::Allow, Kind::BlockBelow) => Kind::AllowBelow,
            _ => self,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::BlockExact => "block, exact",
            Kind::BlockSubtree => "block, the name and below",
            Kind::BlockBelow => "block, below the name",
            Kind::AllowExact => "allow, exact",
            Kind::AllowSubtree => "allow, the name and below",
            Kind::AllowBelow => "allow, below the name",
            Kind::CanaryNxdomain => "canary, answered NXDOMAIN",
            Kind::CanaryNodata => "canary, answered NODATA",
        })
    }
}

/// One rule as it is read: a normalised name (ASCII lower case, punycode, no trailing dot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule<'a> {
    pub name: &'a str,
    pub kind: Kind,
    /// 1-based line in its file.
    pub line: usize,
    /// The line as written.
    pub text: &'a str,
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
    /// An unbound local-zone of a type that does not block (`transparent`...).
    UnboundNotBlocking,
    /// An RPZ record other than CNAME `.`, `*.` or `rpz-passthru.`.
    RpzAction,
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
            Skip::UnboundNotBlocking => "unbound zone type that does not block",
            Skip::RpzAction => "unsupported RPZ action",
            Skip::Unrecognised => "unrecognised line",
        })
    }
}

/// How to read a list.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub role: Role,
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Exact entries of hosts and domain lists cover their subtree too.
    pub subdomains: bool,
}

impl Options {
    pub const fn block() -> Options {
        Options {
            role: Role::Block,
            format: None,
            subdomains: false,
        }
    }

    pub const fn allow() -> Options {
        Options {
            role: Role::Allow,
            ..Options::block()
        }
    }
}

/// What a list gave.
#[derive(Clone, Debug)]
pub struct Summary {
    pub path: String,
    pub role: Role,
    pub format: Format,
    pub rules: usize,
    pub skipped: BTreeMap<Skip, usize>,
    /// The first skipped line: number, reason, and its text (cut to 80 characters).
    pub first_skip: Option<(usize, Skip, String)>,
}

impl Summary {
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    /// With `--strict`, any skipped line is an error that names it.
    pub fn check_strict(&self) -> Result<()> {
        if let Some((line, why, text)) = &self.first_skip {
            bail!(
                "{}:{line}: {why}: `{text}` (--strict; {} line{} skipped in all)",
                self.path,
                self.skipped_total(),
                if self.skipped_total() == 1 { "" } else { "s" }
            );
        }
        Ok(())
    }
}

/// Reads and parses a list file, handing each rule to `visit`.
pub fn load(path: &Path, opts: &Options, visit: &mut dyn FnMut(Rule)) -> Result<Summary> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(parse(&path.display().to_string(), &bytes, opts, visit))
}

/// Parses the bytes of a list. Never fails: what it cannot use it counts as skipped.
pub fn parse(path: &str, bytes: &[u8], opts: &Options, visit: &mut dyn FnMut(Rule)) -> Summary {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let lines = || {
        bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_ascii()))
            .filter(|(_, l)| !l.is_empty())
    };
    let format = opts
        .format
        .unwrap_or_else(|| detect(lines().map(|(_, l)| l)));
    let dialect = dialect(format);
    let mut sum = Summary {
        path: path.to_string(),
        role: opts.role,
        format,
        rules: 0,
        skipped: BTreeMap::new(),
        first_skip: None,
    };
    let skip = |sum: &mut Summary, n: usize, why: Skip, raw: &[u8]| {
        *sum.skipped.entry(why).or_default() += 1;
        if sum.first_skip.is_none() {
            let text: String = String::from_utf8_lossy(raw).chars().take(80).collect();
            sum.first_skip = Some((n, why, text));
        }
    };
    let mut buf = String::new();
    for (n, raw) in lines() {
        if dialect.is_structure(raw) {
            continue;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            skip(&mut sum, n, Skip::InvalidName, raw);
            continue;
        };
        let mut bad = None;
        let mut emit = |name: &str, kind: Kind| {
            let kind = match kind {
                Kind::BlockExact if opts.subdomains && dialect.widens_with_subdomains() => {
                    Kind::BlockSubtree
                }
                k => k,
            };
            match normalise_into(name, &mut buf) {
                Ok(()) => {
                    sum.rules += 1;
                    visit(Rule {
                        name: &buf,
                        kind: kind.with_role(opts.role),
                        line: n,
                        text: line,
                    });
                }
                Err(why) => bad = bad.or(Some(why)),
            }
        };
        let result = dialect.parse_line(line, &mut emit);
        if let Some(why) = result.err().or(bad) {
            skip(&mut sum, n, why, raw);
        }
    }
    sum
}

/// One way of writing a list: how to tell it from the others, which lines are not rules, and
/// the rules of a line. A new format is one more module with one of these, and its place in
/// [`DIALECTS`].
pub trait Dialect: Sync {
    fn format(&self) -> Format;
    /// Whether a line (trimmed, not a comment) looks written in this dialect: a vote for it
    /// when the format is detected. The dialects are asked in [`DIALECTS`]' order.
    fn claims(&self, text: &str) -> bool;
    /// Comments, and lines that structure a file without being rules.
    fn is_structure(&self, line: &[u8]) -> bool {
        line.starts_with(b"#")
    }
    /// Whether `--subdomains` makes its exact entries cover their subtree.
    fn widens_with_subdomains(&self) -> bool {
        false
    }
    /// The rules of one line, handed to `emit` (name, kind); or why the line gives none.
    fn parse_line(&self, text: &str, emit: &mut dyn FnMut(&str, Kind)) -> Result<(), Skip>;
}

/// Every dialect, in the order detection asks them (the most specific first; plain domains
/// take what no other claims).
pub static DIALECTS: &[&dyn Dialect] = &[
    &dnsmasq::Dnsmasq,
    &unbound::Unbound,
    &rpz::Rpz,
    &adblock::Adblock,
    &hosts::Hosts,
    &wildcard::Wildcard,
    &domains::Domains,
];

/// The dialect of `format`.
pub fn dialect(format: Format) -> &'static dyn Dialect {
    *DIALECTS
        .iter()
        .find(|d| d.format() == format)
        .expect("every format has its dialect")
}

/// Detects the format from the first lines that are not comments: the dialect that claims
/// the most of them; plain domains on a tie.
fn detect<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Format {
    let mut votes: BTreeMap<u8, usize> = BTreeMap::new();
    for line in lines
        .filter(|l| !l.starts_with(b"#") && !l.starts_with(b"!") && !l.starts_with(b";"))
        .take(200)
    {
        let text = String::from_utf8_lossy(line);
        if let Some(d) = DIALECTS.iter().find(|d| d.claims(&text)) {
            *votes.entry(d.format() as u8).or_default() += 1;
        }
    }
    votes
        .iter()
        .max_by_key(|&(f, n)| (*n, *f == Format::Domains as u8))
        .and_then(|(f, _)| DIALECTS.iter().find(|d| d.format() as u8 == *f))
        .map_or(Format::Domains, |d| d.format())
}

fn strip_inline_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(l, _)| l).trim()
}

/// Every rule of a list, collected (for tests and tools; loading streams instead).
pub fn collect(path: &str, bytes: &[u8], opts: &Options) -> (Summary, Vec<(String, Kind, usize)>) {
    let mut rules = Vec::new();
    let sum = parse(path, bytes, opts, &mut |r| {
        rules.push((r.name.to_string(), r.kind, r.line))
    });
    (sum, rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_flag_bit_both_ways() {
        let mut seen = 0u8;
        for bit in 0..8 {
            let kind = Kind::of_flag(1 << bit).expect("every bit is a kind");
            assert_eq!(kind.flag(), 1 << bit, "{kind:?}");
            seen |= kind.flag();
        }
        assert_eq!(seen, 0xff);
        assert_eq!(Kind::of_flag(0), None);
    }

    fn rules(text: &str, opts: &Options) -> (Summary, Vec<(String, Kind)>) {
        let (s, r) = collect("t", text.as_bytes(), opts);
        (s, r.into_iter().map(|(n, k, _)| (n, k)).collect())
    }

    fn names(text: &str) -> (Format, Vec<(String, Kind)>) {
        let (s, r) = rules(text, &Options::block());
        (s.format, r)
    }

    fn r(n: &str, k: Kind) -> (String, Kind) {
        (n.to_string(), k)
    }

    use Kind::*;

    #[test]
    fn hosts() {
        let (s, rs) = rules(
            "# c\n127.0.0.1 localhost\n0.0.0.0 Ads.Example.com tracker.test # x\r\n:: v6.test\n",
            &Options::block(),
        );
        assert_eq!(s.format, Format::Hosts);
        assert_eq!(
            rs,
            [
                r("ads.example.com", BlockExact),
                r("tracker.test", BlockExact),
                r("v6.test", BlockExact)
            ]
        );
        assert_eq!(s.skipped[&Skip::LocalHost], 1);
        assert_eq!(s.first_skip.as_ref().unwrap().0, 2);
    }

    #[test]
    fn domains_with_bom_crlf_and_bad_names() {
        let (s, rs) = rules(
            "\u{feff}# t\r\nads.test\r\nbad_name-ok.test\r\nno way\r\n-\u{0}x.test\r\n",
            &Options::block(),
        );
        assert_eq!(s.format, Format::Domains);
        assert_eq!(
            rs,
            [r("ads.test", BlockExact), r("bad_name-ok.test", BlockExact)]
        );
        assert_eq!(s.skipped[&Skip::Unrecognised], 1);
        assert_eq!(s.skipped[&Skip::InvalidName], 1);
        let err = s.check_strict().unwrap_err().to_string();
        assert!(err.starts_with("t:4: unrecognised line: `no way`"), "{err}");
    }

    #[test]
    fn adblock() {
        let (f, rs) = names(
            "! c\n[Adblock Plus 2.0]\n||ads.test^\n@@||ok.ads.test^\n|exact.test^\n||imp.test^$important\nplain.test^\n||x.test^$third-party\n||a.test/path^\nexample.com##.ad\n@@||aax-*.amazon.*^\n",
        );
        assert_eq!(f, Format::Adblock);
        assert_eq!(
            rs,
            [
                r("ads.test", BlockSubtree),
                r("ok.ads.test", AllowSubtree),
                r("exact.test", BlockExact),
                r("imp.test", BlockSubtree),
                r("plain.test", BlockSubtree),
            ]
        );
        let (s, _) = rules(
            "||x.test^$third-party\n||a.test/path^\nexample.com##.ad\n",
            &Options::block(),
        );
        assert_eq!(s.skipped[&Skip::AdblockModifier], 1);
        assert_eq!(s.skipped[&Skip::AdblockNotDns], 2);
    }

    #[test]
    fn wildcard() {
        let (f, rs) = names("*.ads.test\n*.b.test\n");
        assert_eq!(f, Format::Wildcard);
        assert_eq!(rs[0], r("ads.test", BlockSubtree));
    }

    #[test]
    fn dnsmasq() {
        let (f, rs) = names(
            "# c\naddress=/ads.test/#\naddress=/a.test/b.test/0.0.0.0\nlocal=/local.test/\nserver=/srv.test/198.18.0.53\nserver=/blank.test/\nconf-dir=/etc\n",
        );
        assert_eq!(f, Format::Dnsmasq);
        assert_eq!(
            rs,
            [
                r("ads.test", BlockSubtree),
                r("a.test", BlockSubtree),
                r("b.test", BlockSubtree),
                r("local.test", BlockSubtree),
                r("srv.test", BlockSubtree),
                r("blank.test", BlockSubtree),
            ]
        );
    }

    #[test]
    fn unbound() {
        let (s, rs) = rules(
            "server:\nlocal-zone: \"ads.test.\" always_nxdomain\n  local-zone: \"null.test\" always_null\nlocal-zone: \"st.test.\" static\nlocal-data: \"st.test. A 0.0.0.0\"\nlocal-zone: \"pass.test.\" transparent\n",
            &Options::block(),
        );
        assert_eq!(s.format, Format::Unbound);
        assert_eq!(
            rs,
            [
                r("ads.test", BlockSubtree),
                r("null.test", BlockSubtree),
                r("st.test", BlockSubtree)
            ]
        );
        assert_eq!(s.skipped[&Skip::UnboundNotBlocking], 1);
    }

    #[test]
    fn rpz() {
        let (s, rs) = rules(
            "$TTL 300\n@ IN SOA localhost. root.localhost. 1 3600 600 86400 300\n  IN NS localhost.\n; comment\nads.test CNAME .\n*.ads.test CNAME .\nnodata.test 60 IN CNAME *.\nok.ads.test CNAME rpz-passthru.\nredirect.test CNAME walled.garden.\n",
            &Options::block(),
        );
        assert_eq!(s.format, Format::Rpz);
        assert_eq!(
            rs,
            [
                r("ads.test", BlockExact),
                r("ads.test", BlockBelow),
                r("nodata.test", BlockExact),
                r("ok.ads.test", AllowExact),
            ]
        );
        assert_eq!(s.skipped[&Skip::RpzAction], 1);
        assert_eq!(s.skipped_total(), 1);
    }

    #[test]
    fn forced_format_and_subdomains() {
        let opts = Options {
            format: Some(Format::Domains),
            subdomains: true,
            ..Options::block()
        };
        let (s, rs) = rules("||not.adblock^\nads.test\n", &opts);
        assert_eq!(s.format, Format::Domains);
        assert_eq!(rs, [r("ads.test", BlockSubtree)]);
        // --subdomains leaves adblock's exact `|d^` exact.
        let opts = Options {
            subdomains: true,
            ..Options::block()
        };
        let (_, rs) = rules("|exact.test^\n||sub.test^\n", &opts);
        assert_eq!(
            rs,
            [r("exact.test", BlockExact), r("sub.test", BlockSubtree)]
        );
        let (_, rs) = rules("0.0.0.0 h.test\n", &opts);
        assert_eq!(rs, [r("h.test", BlockSubtree)]);
    }

    #[test]
    fn allowlist_role_turns_entries_into_allows() {
        let (_, rs) = rules("ok.test\n", &Options::allow());
        assert_eq!(rs, [r("ok.test", AllowExact)]);
        let (_, rs) = rules("||ok.test^\n", &Options::allow());
        assert_eq!(rs, [r("ok.test", AllowSubtree)]);
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
        let (_, rs) = names("www.bücher.test\n");
        assert_eq!(rs, [r("www.xn--bcher-kva.test", BlockExact)]);
    }

    #[test]
    fn hostile_input() {
        // Binary garbage.
        let junk: Vec<u8> = (0..65536u32)
            .map(|i| (i.wrapping_mul(7919) % 251) as u8)
            .collect();
        let (s, _) = collect("junk", &junk, &Options::block());
        assert!(s.rules < 10, "{s:?}");
        // NULs in and between names.
        let (s, rs) = collect(
            "nul",
            b"ads.test\n\0\0\0\nbad\0name.test\n",
            &Options::block(),
        );
        assert_eq!(rs.len(), 1);
        assert_eq!(s.skipped[&Skip::InvalidName], 2);
        // A 10 MB line.
        let mut big = b"ok.test\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', 10 << 20));
        big.extend_from_slice(b".test\nlast.test\n");
        let (s, rs) = collect("big", &big, &Options::block());
        assert_eq!(rs.len(), 2);
        let (line, why, text) = s.first_skip.unwrap();
        assert_eq!((line, why, text.len()), (2, Skip::InvalidName, 80));
        // An empty file, and one of comments only.
        for empty in [&b""[..], b"\n\n", b"# only\n# comments\n"] {
            let (s, rs) = collect("e", empty, &Options::block());
            assert!(rs.is_empty() && s.skipped_total() == 0);
        }
        // Invalid UTF-8.
        let (s, rs) = collect("u", b"\xff\xfe.test\nok.test\n", &Options::block());
        assert_eq!((rs.len(), s.skipped[&Skip::InvalidName]), (1, 1));
    }

    #[test]
    fn real_lines_from_the_shared_lists() {
        // One line of each shared file, as it is written there.
        let cases: &[(&str, Format, &str, Kind)] = &[
            (
                "0.0.0.0 33a89nw03k.ru",
                Format::Hosts,
                "33a89nw03k.ru",
                BlockExact,
            ),
            (
                "||adfstat.yandex.ru^",
                Format::Adblock,
                "adfstat.yandex.ru",
                BlockSubtree,
            ),
            (
                "*.000123456789.online",
                Format::Wildcard,
                "000123456789.online",
                BlockSubtree,
            ),
            (
                "address=/58taopinhui.com/#",
                Format::Dnsmasq,
                "58taopinhui.com",
                BlockSubtree,
            ),
            (
                "answers.teradata.com",
                Format::Domains,
                "answers.teradata.com",
                BlockExact,
            ),
            (
                "@@||5014.xg4ken.com^",
                Format::Adblock,
                "5014.xg4ken.com",
                AllowSubtree,
            ),
        ];
        for (line, format, name, kind) in cases {
            let (s, rs) = rules(&format!("{line}\n"), &Options::block());
            assert_eq!(s.format, *format, "{line}");
            assert_eq!(rs, [r(name, *kind)], "{line}");
        }
    }
}

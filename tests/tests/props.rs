//! Property tests through the real kernel program (BPF_PROG_TEST_RUN): at least 100,000
//! frames per run, generated from valid queries and mutated (flags, counts, labels, pointers,
//! lengths, truncation, trailing bytes, VLAN tags, IPv4 options, IPv4 and IPv6, spoofed
//! sources). For every frame:
//! - the action is exactly the one an independent model of the rules gives ([`expected`]):
//!   a query whose name parses and is blocked is answered (from a client) or dropped (from
//!   any other source), never passed; DNS that cannot be parsed is dropped (passed with
//!   --pass-unparsed); DoT and DoQ are dropped; everything else passes;
//! - on PASS the frame is unchanged, byte for byte;
//! - a frame that is not a UDP datagram to port 53 is never changed or sent back;
//! - on TX the output is a valid DNS response to that exact question, with correct IPv4 and
//!   UDP checksums, its addresses, ports and MACs swapped, no larger than the query plus one
//!   answer record and one SOA; it answers only a name the rules block, for a source among
//!   the clients;
//! - an unmutated query for a blocked name from a client is answered, and one for any other
//!   name passes.
//!
//! `DNSSINK_PROP_SEED` and `DNSSINK_PROP_FRAMES` replay a run; both are printed.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use dnssink::{
    bpf::Sinkhole,
    compile::RuleSet,
    lists::{Options, collect},
};
use dnssink_tests::frame::{self, Spec};
use dnssink_tests::{XDP_DROP, XDP_PASS, XDP_TX, settings};
use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RecordType},
};

const EXACT: usize = 40;
const SUBTREE: usize = 40;
const ALLOWED: usize = 8;

/// splitmix64: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// What the rules say, computed from the lists' names rather than the hash table: the
/// kernel's verdict is checked against it.
struct Model {
    exact: HashSet<String>,
    subtree: HashSet<String>,
    allow: HashSet<String>,
}

impl Model {
    fn new() -> Model {
        Model {
            exact: (0..EXACT).map(|i| format!("exact{i}.test")).collect(),
            subtree: (0..SUBTREE).map(|i| format!("sub{i}.test")).collect(),
            allow: (0..ALLOWED).map(|i| format!("ok.sub{i}.test")).collect(),
        }
    }

    fn lists(&self) -> (String, String) {
        let mut block = String::new();
        for n in &self.exact {
            block.push_str(&format!("|{n}^\n"));
        }
        for n in &self.subtree {
            block.push_str(&format!("||{n}^\n"));
        }
        let allow = self.allow.iter().map(|n| format!("@@||{n}^\n")).collect();
        (block, allow)
    }

    /// Whether the name (wire labels, any case) is blocked. Label by label: a label that
    /// holds a dot byte is one label, which matches no name of the lists.
    fn blocked(&self, labels: &[Vec<u8>]) -> bool {
        let lower: Vec<Vec<u8>> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
        let is = |set: &HashSet<String>, suffix: &[Vec<u8>]| {
            set.iter().any(|n| {
                n.split('.').count() == suffix.len()
                    && n.split('.')
                        .zip(suffix)
                        .all(|(a, b)| a.as_bytes() == b.as_slice())
            })
        };
        let suffixes: Vec<&[Vec<u8>]> = (0..lower.len()).map(|i| &lower[i..]).collect();
        if suffixes.iter().any(|s| is(&self.allow, s)) {
            return false;
        }
        is(&self.exact, suffixes[0]) || suffixes.iter().any(|s| is(&self.subtree, s))
    }
}

fn random_label(rng: &mut Rng, max: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    let len = 1 + rng.below(max);
    (0..len)
        .map(|_| CHARS[rng.below(CHARS.len())] as char)
        .collect()
}

fn random_case(rng: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.chance(30) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// A query name: blocked, allowed, below a blocked or allowed name, or unlisted.
fn random_name(rng: &mut Rng) -> String {
    let name = match rng.below(8) {
        0 => format!("exact{}.test", rng.below(EXACT)),
        1 => format!("{}.exact{}.test", random_label(rng, 3), rng.below(EXACT)),
        2 => format!("sub{}.test", rng.below(SUBTREE)),
        3 => format!(
            "{}.{}.sub{}.test",
            random_label(rng, 20),
            random_label(rng, 5),
            rng.below(SUBTREE)
        ),
        4 => format!(
            "{}ok.sub{}.test",
            ["", "x."][rng.below(2)],
            rng.below(ALLOWED)
        ),
        5 => {
            // Long: up to the 253-character limit.
            let mut labels = Vec::new();
            let mut len = "sub00.test".len();
            while len < 240 {
                let l = random_label(rng, 63.min(252 - len));
                len += l.len() + 1;
                labels.push(l);
            }
            labels.push(format!("sub{}.test", rng.below(SUBTREE)));
            labels.join(".")
        }
        _ => {
            let n = 1 + rng.below(4);
            let mut labels: Vec<String> = (0..n).map(|_| random_label(rng, 20)).collect();
            labels.push("test".into());
            labels.join(".")
        }
    };
    random_case(rng, &name)
}

fn random_query(rng: &mut Rng, name: &str) -> Vec<u8> {
    let qtype = match rng.below(8) {
        0 => RecordType::A,
        1 => RecordType::AAAA,
        2 => RecordType::HTTPS,
        3 => RecordType::TXT,
        4 => RecordType::MX,
        5 => RecordType::ANY,
        6 => RecordType::SVCB,
        _ => RecordType::from(rng.next() as u16),
    };
    let mut m = Message::new();
    m.set_id(rng.next() as u16)
        .set_recursion_desired(rng.chance(90))
        .set_checking_disabled(rng.chance(10))
        .set_authentic_data(rng.chance(20))
        .add_query(Query::query(
            {
                let mut n = Name::from_labels(name.split('.').map(str::as_bytes))
                    .expect("labels of 1 to 63 bytes");
                n.set_fqdn(true);
                n
            },
            qtype,
        ));
    if rng.chance(60) {
        let mut e = Edns::new();
        e.set_max_payload(512 + rng.below(4000) as u16);
        e.set_dnssec_ok(rng.chance(20));
        m.set_edns(e);
    }
    m.to_vec().expect("encode")
}

/// The question of a DNS message: its labels, and its wire bytes (name, type, class).
fn question(dns: &[u8]) -> Option<(Vec<Vec<u8>>, Vec<u8>)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let n = *dns.get(i)? as usize;
        if n == 0 {
            break;
        }
        if n > 63 {
            return None;
        }
        labels.push(dns.get(i + 1..i + 1 + n)?.to_vec());
        i += 1 + n;
    }
    Some((labels, dns.get(12..i + 5)?.to_vec()))
}

/// Ways to break a valid frame.
/// The folded sum of the IPv4 header at `l3` (0xffff when its checksum is right), if whole.
fn ip4_header_sum(f: &[u8], l3: usize) -> Option<u16> {
    let ihl = (*f.get(l3)? as usize & 0x0f) * 4;
    let h = f.get(l3..l3 + ihl)?;
    Some(frame::fold(frame::sum16(h)))
}

/// Makes the IPv4 header checksum at `l3` right.
fn fix_ip4_checksum(f: &mut [u8], l3: usize) {
    let ihl = (f[l3] as usize & 0x0f) * 4;
    f[l3 + 10..l3 + 12].fill(0);
    let c = !frame::fold(frame::sum16(&f[l3..l3 + ihl]));
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

fn mutate(rng: &mut Rng, f: &mut Vec<u8>, dns_at: usize, v4_l3: Option<usize>) {
    for _ in 0..1 + rng.below(3) {
        let len = f.len();
        match rng.below(11) {
            0 => {
                let i = rng.below(len);
                f[i] ^= 1 << rng.below(8);
            }
            1 if len > dns_at + 12 => {
                // A header byte: flags, opcode, rcode, the section counts.
                let i = dns_at + 2 + rng.below(10);
                f[i] = rng.byte();
            }
            // Not below an Ethernet header, which test_run requires.
            2 if len > 14 => f.truncate(14 + rng.below(len - 14)),
            3 => {
                for _ in 0..1 + rng.below(40) {
                    f.push(rng.byte());
                }
            }
            4 if len > dns_at + 13 => {
                // A label length: longer, shorter, reserved, or a compression pointer.
                let i = dns_at + 12 + rng.below((len - dns_at - 12).min(60));
                f[i] = match rng.below(4) {
                    0 => 0xc0 | rng.below(4) as u8,
                    1 => 0x40 | rng.below(64) as u8,
                    2 => rng.below(64) as u8,
                    _ => 0,
                };
            }
            5 if len >= dns_at => {
                // The UDP length.
                let v = (rng.next() as u16).to_be_bytes();
                f[dns_at - 4] = v[0];
                f[dns_at - 3] = v[1];
            }
            6 => {
                if let Some(l3) = v4_l3 {
                    // The IPv4 total length, or the fragment bits.
                    let at = l3 + [2, 3, 6, 7][rng.below(4)];
                    if at < f.len() {
                        f[at] = rng.byte();
                    }
                }
            }
            7 if len > dns_at + 3 => {
                // QR, OPCODE, TC.
                f[dns_at + 2] ^= [0x80, 0x78, 0x02][rng.below(3)];
            }
            8 if len > dns_at + 12 => {
                // A byte of the name or what follows.
                let i = dns_at + 12 + rng.below(len - dns_at - 12);
                f[i] = rng.byte();
            }
            9 if len > dns_at + 12 => {
                // Cut inside the message, with the lengths left saying more.
                f.truncate(dns_at + 12 + rng.below(len - dns_at - 12));
            }
            _ => {
                // The EtherType, or a VLAN tag's.
                let at = 12 + 4 * rng.below(2);
                if at + 1 < len {
                    f[at + 1] = rng.byte();
                }
            }
        }
    }
    if let Some(l3) = v4_l3
        && f.len() >= l3 + 20
        && rng.chance(70)
    {
        // Keep the IPv4 header checksum right, so that the frame gets further.
        let ihl = ((f[l3] & 0x0f) as usize * 4).clamp(20, 60);
        if f.len() >= l3 + ihl {
            f[l3 + 10] = 0;
            f[l3 + 11] = 0;
            let sum: u32 = f[l3..l3 + ihl]
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                .sum();
            let c = !(((sum & 0xffff) + (sum >> 16)) as u16);
            f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
    }
}

const MODES: &[&str] = &[
    "nxdomain",
    "nodata",
    "null",
    "refused",
    "198.18.0.10,2001:db8::10",
];

#[derive(Default, Debug)]
struct Tally {
    tx: usize,
    pass: usize,
    drop: usize,
    mutated: usize,
}

#[test]
fn a_hundred_thousand_frames_through_the_kernel() {
    let seed: u64 = std::env::var("DNSSINK_PROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let frames: usize = std::env::var("DNSSINK_PROP_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    println!("property run: DNSSINK_PROP_SEED={seed} DNSSINK_PROP_FRAMES={frames}");
    let mut rng = Rng(seed);

    let model = Model::new();
    let (block, allow) = model.lists();
    let (_, b) = collect("block", block.as_bytes(), &Options::block());
    let (_, a) = collect("allow", allow.as_bytes(), &Options::allow());
    let rules = RuleSet::from_rules(b.iter().chain(&a).map(|(n, k, _)| (n.as_str(), *k))).unwrap();
    let clients = ["--clients", "198.18.0.0/24", "--clients", "2001:db8::/64"];
    let mut s = Sinkhole::load(&rules, &settings(&clients)).unwrap();

    let mut tally = Tally::default();
    let mut mode = 0;
    let mut pass_unparsed = false;
    for n in 0..frames {
        if n % 1000 == 0 {
            mode = rng.below(MODES.len());
            let ttl = (1 + rng.below(86400)).to_string();
            pass_unparsed = rng.chance(30);
            let mut args = vec!["--response", MODES[mode], "--ttl", &ttl];
            args.extend(clients);
            if pass_unparsed {
                args.push("--pass-unparsed");
            }
            s.set_settings(&settings(&args)).unwrap();
        }
        let name = random_name(&mut rng);
        let dns = random_query(&mut rng, &name);
        let v6 = rng.chance(50);
        let client = rng.chance(85);
        let src: IpAddr = match (v6, client) {
            (false, true) => Ipv4Addr::new(198, 18, 0, 2 + rng.below(250) as u8).into(),
            (false, false) => Ipv4Addr::new(203, 0, 113, rng.byte()).into(),
            (true, true) => "2001:db8::2".parse::<Ipv6Addr>().unwrap().into(),
            (true, false) => Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 7).into(),
        };
        let base = if v6 { Spec::v6() } else { Spec::v4() };
        let vlans: &[u16] = [&[][..], &[100], &[10, 20]][rng.below(3)];
        let spec = Spec {
            src,
            dport: match rng.below(20) {
                0 => 853,
                1 => rng.next() as u16,
                _ => 53,
            },
            ip_options: if v6 { 0 } else { 4 * rng.below(11) },
            ..base
        }
        .vlans(vlans);
        let mut f = frame::frame(&spec, &dns);
        let l3 = 14 + 4 * vlans.len();
        let dns_at = l3 + if v6 { 40 } else { 20 + spec.ip_options } + 8;
        let mutated = rng.chance(50);
        if mutated {
            mutate(&mut rng, &mut f, dns_at, (!v6).then_some(l3));
            tally.mutated += 1;
        }
        let (action, out) = dnssink_tests::test_run(&s, &f);
        let ctx = || {
            format!(
                "frame {n} (seed {seed}, mode {}, mutated {mutated}):\n in  {}\n out {}",
                MODES[mode],
                hex(&f),
                hex(&out)
            )
        };
        let want = expected(&model, &f, pass_unparsed);
        assert_eq!(action, want, "the model says otherwise: {}", ctx());
        let flow = Headers::read(&f).map(|h| h.flow);
        let is_dns = flow == Some((17, 53));
        match action {
            XDP_PASS => {
                tally.pass += 1;
                assert_eq!(out, f, "a passed frame changed: {}", ctx());
            }
            XDP_DROP => tally.drop += 1,
            XDP_TX => {
                tally.tx += 1;
                assert!(
                    is_dns,
                    "sent back a frame that is not a DNS query: {}",
                    ctx()
                );
                // A query whose IPv4 header checksum is wrong (a mutated header byte) gets an
                // answer whose checksum is wrong by as much: the program updates the checksum
                // for the fields it changes (RFC 1624) and does not check it, and the client
                // drops the answer, as the gateway's own stack would have dropped the query.
                // The rest of the answer is checked with its checksum made right.
                let mut out = out.clone();
                if let Some(query_sum) = (!v6).then(|| ip4_header_sum(&f, l3)).flatten()
                    && query_sum != 0xffff
                {
                    assert_eq!(
                        ip4_header_sum(&out, l3),
                        Some(query_sum),
                        "the answer keeps the query's checksum error: {}",
                        ctx()
                    );
                    fix_ip4_checksum(&mut out, l3);
                }
                check_answer(&model, &f, &out, MODES[mode]).unwrap_or_else(|e| {
                    panic!("{e:#}: {}", ctx());
                });
            }
            other => panic!("action {other}: {}", ctx()),
        }
        if !mutated && spec.dport == 53 {
            let (labels, _) = question(&dns).unwrap();
            let want = match (model.blocked(&labels), client) {
                (true, true) => XDP_TX,
                (true, false) => XDP_DROP,
                (false, _) => XDP_PASS,
            };
            assert_eq!(action, want, "{name}: {}", ctx());
        }
    }
    let c = s.counters().unwrap();
    println!("{frames} frames: {tally:?}; kernel counters: {c:?}");
    assert!(frames < 1000 || (tally.tx > frames / 10 && tally.pass > frames / 10));
    assert_eq!(c["tx_failed"], 0);
    assert!(frames < 10_000 || c["dropped_unparsed"] > 0);
    assert!(frames < 10_000 || c["dropped_foreign_client"] > 0);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The headers of a frame, read plainly, the way the program is documented to read them: at
/// most two VLAN tags, then IPv4 (version 4, a header of at least 20 bytes) or IPv6, with up
/// to four extension headers. None for anything else, or a frame cut short. Mutated frames
/// too, which `frame::parse` refuses.
struct Headers {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlans: Vec<(u16, u16)>,
    src: IpAddr,
    dst: IpAddr,
    /// The transport protocol and destination port (0 where there is none to read).
    flow: (u8, u16),
    /// Offset of the transport header; None for a later fragment, which has none.
    l4: Option<usize>,
    /// End of the IP packet, from its length field.
    ip_end: usize,
    /// The first of several IPv4 fragments.
    first_fragment: bool,
    /// IPv6 extension headers before the transport.
    ext: bool,
}

impl Headers {
    fn read(f: &[u8]) -> Option<Headers> {
        let word = |at: usize| Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]));
        let mut off = 12;
        let mut vlans = Vec::new();
        let mut et = word(off)?;
        while (et == 0x8100 || et == 0x88a8) && vlans.len() < 2 {
            vlans.push((et, word(off + 2)?));
            off += 4;
            et = word(off)?;
        }
        off += 2;
        let l3 = off;
        let (mut h, proto, l4) = match et {
            0x0800 => {
                let ip = f.get(off..off + 20)?;
                let ihl = (ip[0] & 0x0f) as usize * 4;
                if ip[0] >> 4 != 4 || ihl < 20 {
                    return None;
                }
                let s: [u8; 4] = ip[12..16].try_into().ok()?;
                let d: [u8; 4] = ip[16..20].try_into().ok()?;
                let frags = u16::from_be_bytes([ip[6], ip[7]]);
                let h = Headers {
                    dst_mac: f.get(0..6)?.try_into().ok()?,
                    src_mac: f.get(6..12)?.try_into().ok()?,
                    vlans,
                    src: s.into(),
                    dst: d.into(),
                    flow: (ip[9], 0),
                    l4: None,
                    ip_end: l3 + u16::from_be_bytes([ip[2], ip[3]]) as usize,
                    first_fragment: frags & 0x2000 != 0,
                    ext: false,
                };
                (h, ip[9], (frags & 0x1fff == 0).then_some(l3 + ihl))
            }
            0x86dd => {
                let ip = f.get(off..off + 40)?;
                let s: [u8; 16] = ip[8..24].try_into().ok()?;
                let d: [u8; 16] = ip[24..40].try_into().ok()?;
                let mut h = Headers {
                    dst_mac: f.get(0..6)?.try_into().ok()?,
                    src_mac: f.get(6..12)?.try_into().ok()?,
                    vlans,
                    src: s.into(),
                    dst: d.into(),
                    flow: (ip[6], 0),
                    l4: None,
                    ip_end: l3 + 40 + u16::from_be_bytes([ip[4], ip[5]]) as usize,
                    first_fragment: false,
                    ext: false,
                };
                let is_ext = |n: u8| matches!(n, 0 | 43 | 44 | 60);
                let (mut next, mut at, mut later) = (ip[6], l3 + 40, false);
                if is_ext(next) {
                    h.ext = true;
                    for _ in 0..4 {
                        if !is_ext(next) {
                            break;
                        }
                        let Some(e) = f.get(at..at + 4) else {
                            h.flow = (0, 0); // cut short: no flow at all
                            return Some(h);
                        };
                        if next == 44 {
                            later |= u16::from_be_bytes([e[2], e[3]]) >> 3 != 0;
                            at += 8;
                        } else {
                            at += (e[1] as usize + 1) * 8;
                        }
                        next = e[0];
                    }
                    if is_ext(next) {
                        // A chain too long to walk counts as DNS that cannot be parsed.
                        h.flow = (17, 53);
                        return Some(h);
                    }
                }
                (h, next, (!later).then_some(at))
            }
            _ => return None,
        };
        h.flow = (proto, 0);
        if let Some(at) = l4 {
            h.l4 = Some(at);
            if matches!(proto, 6 | 17) && f.len() >= at + 4 {
                h.flow = (proto, word(at + 2)?);
            }
        }
        Some(h)
    }

    /// The source and destination ports, where the frame has them.
    fn ports(&self, f: &[u8]) -> Option<(u16, u16)> {
        let l4 = self.l4?;
        let word = |at: usize| Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]));
        Some((word(l4)?, word(l4 + 2)?))
    }

    /// The UDP payload, as long as the UDP header says.
    fn udp_payload<'a>(&self, f: &'a [u8]) -> Option<&'a [u8]> {
        let l4 = self.l4?;
        let len = u16::from_be_bytes([*f.get(l4 + 4)?, *f.get(l4 + 5)?]) as usize;
        f.get(l4 + 8..l4 + len.max(8))
    }

    /// Whether the source is among the clients (198.18.0.0/24, 2001:db8::/64).
    fn source_is_client(&self) -> bool {
        match self.src {
            IpAddr::V4(a) => a.octets()[..3] == [198, 18, 0],
            IpAddr::V6(a) => a.segments()[..4] == [0x2001, 0xdb8, 0, 0],
        }
    }
}

/// What the program must do with frame `f`, from the rules as the README gives them.
fn expected(model: &Model, f: &[u8], pass_unparsed: bool) -> u32 {
    let unparsed = if pass_unparsed { XDP_PASS } else { XDP_DROP };
    let Some(h) = Headers::read(f) else {
        return XDP_PASS; // not IP: not ours
    };
    match h.flow {
        (17, 53) => {}
        (6, 53) if h.ext || h.first_fragment => return unparsed,
        (6 | 17, 853) => return XDP_DROP,
        _ => return XDP_PASS,
    }
    if h.ext || h.first_fragment {
        return unparsed;
    }
    // The UDP datagram must fill the IP packet, the packet must be in the frame, and hold a
    // DNS header.
    let Some(l4) = h.l4 else { return unparsed };
    let Some(udp) = f.get(l4..l4 + 8) else {
        return unparsed;
    };
    let end = l4 + u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if end != h.ip_end || h.ip_end > f.len() || end < l4 + 8 + 12 {
        return unparsed;
    }
    let dns = &f[l4 + 8..];
    if dns[2] & 0xf8 != 0 {
        return XDP_PASS; // a response, or an opcode other than QUERY
    }
    if u16::from_be_bytes([dns[4], dns[5]]) != 1 {
        return unparsed;
    }
    // The name, label by label, at most 255 bytes; its type and class inside the datagram.
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let Some(&n) = dns.get(i) else {
            return unparsed;
        };
        if n == 0 {
            break;
        }
        if n & 0xc0 != 0 {
            return unparsed;
        }
        let Some(label) = dns.get(i + 1..i + 1 + n as usize) else {
            return unparsed;
        };
        labels.push(label.to_vec());
        i += 1 + n as usize;
        if i - 12 >= 255 {
            return unparsed;
        }
    }
    if labels.is_empty() {
        return XDP_PASS; // the root: no rule names it
    }
    if l4 + 8 + i + 1 + 4 > end {
        return unparsed;
    }
    match (model.blocked(&labels), h.source_is_client()) {
        (true, true) => XDP_TX,
        (true, false) => XDP_DROP,
        (false, _) => XDP_PASS,
    }
}

/// An answer frame, checked against the query frame it answers.
fn check_answer(model: &Model, input: &[u8], out: &[u8], mode: &str) -> anyhow::Result<()> {
    use anyhow::ensure;
    let p = frame::parse(out)?;
    // The query as it came: the answer must be to exactly this question.
    let h = Headers::read(input).ok_or_else(|| anyhow::anyhow!("unreadable query headers"))?;
    let qdns = h
        .udp_payload(input)
        .ok_or_else(|| anyhow::anyhow!("no DNS payload in the query"))?;
    let (labels, qwire) = question(qdns).ok_or_else(|| anyhow::anyhow!("no question"))?;
    ensure!(
        model.blocked(&labels),
        "answered a name the rules do not block"
    );
    // The query's headers as they came (a mutation may have changed any of them).
    let (sport, dport) = h
        .ports(input)
        .ok_or_else(|| anyhow::anyhow!("no ports in the query"))?;
    ensure!(
        h.source_is_client(),
        "answered a source outside the clients: {}",
        h.src
    );
    ensure!(p.dst_mac == h.src_mac && p.src_mac == h.dst_mac, "MACs");
    ensure!(p.vlans == h.vlans, "VLAN tags");
    ensure!(p.dst == h.src && p.src == h.dst, "addresses");
    ensure!(p.dport == sport && p.sport == dport, "ports");
    let (_, awire) = question(&p.dns).ok_or_else(|| anyhow::anyhow!("no question back"))?;
    ensure!(awire == qwire, "the question changed");
    let m = &p.message;
    // Read from the query's bytes: hickory need not parse what follows its question.
    let id = u16::from_be_bytes([qdns[0], qdns[1]]);
    let rd = qdns[2] & 1 != 0;
    let after = 12 + qwire.len();
    let edns = qdns[11] | qdns[10] != 0 && qdns.get(after..after + 3) == Some(&[0, 0, 41][..]);
    ensure!(m.id() == id, "id");
    ensure!(m.message_type() == MessageType::Response, "QR");
    ensure!(m.op_code() == OpCode::Query, "opcode");
    ensure!(m.recursion_desired() == rd, "RD");
    ensure!(m.queries().len() == 1, "one question");
    ensure!(m.answers().len() <= 1, "at most one answer");
    ensure!(m.name_servers().len() <= 1, "at most one SOA");
    ensure!(m.extensions().is_some() == edns, "OPT back only for OPT");
    let n = qwire.len();
    let qtype = RecordType::from(u16::from_be_bytes([qwire[n - 4], qwire[n - 3]]));
    let address = matches!(qtype, RecordType::A | RecordType::AAAA);
    let rcode = m.response_code();
    match mode {
        "nxdomain" => ensure!(rcode == ResponseCode::NXDomain, "rcode {rcode}"),
        "nodata" => ensure!(
            rcode == ResponseCode::NoError && m.answers().is_empty(),
            "rcode {rcode}"
        ),
        "refused" => ensure!(rcode == ResponseCode::Refused, "rcode {rcode}"),
        _ => ensure!(
            rcode == ResponseCode::NoError && m.answers().len() == usize::from(address),
            "rcode {rcode}, {} answers for {qtype}",
            m.answers().len()
        ),
    }
    // No larger than the query, plus one answer record (a compressed name, 10 bytes of
    // fields, 16 of address) and one SOA (50 bytes).
    let grown = p.dns.len() as isize - qdns.len() as isize;
    ensure!(grown <= 28 + 50, "the answer grew by {grown} bytes");
    Ok(())
}

//! The loaded XDP program, fed crafted frames through BPF_PROG_TEST_RUN: every answer is
//! parsed with hickory-proto and checked field by field, with both checksums; every frame that
//! passes must come out unchanged.

use std::net::IpAddr;

use dnssink::{
    ListSpec,
    bpf::Sinkhole,
    compile::RuleSet,
    lists::{Options, collect},
};
use dnssink_tests::frame::{self, CLIENT_MAC, GATEWAY_MAC, Parsed, Spec, query};
use dnssink_tests::{XDP_DROP, XDP_PASS, XDP_TX, settings};
use hickory_proto::{
    op::{MessageType, ResponseCode},
    rr::{RData, RecordType},
};

const BLOCK: &str = "\
||ads.test^
||tracker.test^
@@||ok.tracker.test^
|exact.test^
";

fn load(block: &str, allow: &str, cfg: &str) -> Sinkhole {
    let (_, b) = collect("block", block.as_bytes(), &Options::block());
    let (_, a) = collect("allow", allow.as_bytes(), &Options::allow());
    let rules = RuleSet::from_rules(b.iter().chain(&a).map(|(n, k, _)| (n.as_str(), *k))).unwrap();
    Sinkhole::load(&rules, &settings(&["--response", cfg]))
        .expect("the program loads and passes the verifier")
}

fn sinkhole() -> Sinkhole {
    load(BLOCK, "", "nxdomain")
}

fn run(s: &Sinkhole, input: &[u8]) -> (u32, Vec<u8>) {
    dnssink_tests::test_run(s, input)
}

/// Runs a query that must be answered, and checks what every answer must hold.
fn answer(s: &Sinkhole, spec: &Spec, msg: &[u8]) -> Parsed {
    let input = frame::frame(spec, msg);
    let (action, out) = run(s, &input);
    assert_eq!(action, XDP_TX, "expected an answer");
    let p = frame::parse(&out).expect("a well-formed answer frame");
    assert_eq!((p.dst_mac, p.src_mac), (CLIENT_MAC, GATEWAY_MAC));
    assert_eq!((p.src, p.dst), (spec.dst, spec.src));
    assert_eq!((p.sport, p.dport), (spec.dport, spec.sport));
    let tags: Vec<u16> = p.vlans.iter().map(|v| v.1).collect();
    assert_eq!(tags, spec.vlans);
    assert_eq!(p.ttl, 64);
    let q = hickory_proto::op::Message::from_vec(msg).unwrap();
    let m = &p.message;
    assert_eq!(m.id(), q.id());
    assert_eq!(m.message_type(), MessageType::Response);
    assert!(m.recursion_desired() && m.recursion_available());
    assert!(!m.truncated());
    // The question comes back byte for byte, case included.
    let qlen = msg.len() - if q.extensions().is_some() { 11 } else { 0 };
    assert_eq!(&p.dns[12..qlen], &msg[12..qlen]);
    assert_eq!(m.extensions().is_some(), q.extensions().is_some());
    // Never larger than the query plus one answer record and one SOA.
    assert!(p.dns.len() <= msg.len() + 28 + 50);
    p
}

fn passes(s: &Sinkhole, input: &[u8]) {
    let (action, out) = run(s, input);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, input, "a passed frame is unchanged");
}

fn nxdomain(p: &Parsed) {
    let m = &p.message;
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(m.answers().is_empty());
    soa(p, 10);
}

fn soa(p: &Parsed, ttl: u32) {
    let ns = p.message.name_servers();
    assert_eq!(ns.len(), 1);
    assert_eq!(ns[0].record_type(), RecordType::SOA);
    assert_eq!(ns[0].ttl(), ttl);
    let RData::SOA(soa) = ns[0].data() else {
        panic!("not an SOA")
    };
    assert_eq!(soa.mname().to_ascii(), "dnssink.invalid.");
    assert_eq!(soa.minimum(), ttl);
}

#[test]
fn ipv4_a_with_edns_gets_nxdomain() {
    let s = sinkhole();
    let p = answer(
        &s,
        &Spec::v4(),
        &query("www.ads.test.", RecordType::A, true),
    );
    nxdomain(&p);
    assert_eq!(p.message.extensions().as_ref().unwrap().max_payload(), 1232);
    let c = s.counters().unwrap();
    assert_eq!(
        (c["frames"], c["dns_queries"], c["answered_subtree"]),
        (1, 1, 1)
    );
}

#[test]
fn ipv6_aaaa_without_edns() {
    let s = sinkhole();
    let p = answer(
        &s,
        &Spec::v6(),
        &query("ads.test.", RecordType::AAAA, false),
    );
    nxdomain(&p);
    assert!(p.message.extensions().is_none());
}

#[test]
fn vlan_tags_one_and_two() {
    let s = sinkhole();
    for spec in [Spec::v4(), Spec::v6()] {
        for tags in [&[100][..], &[200, 100][..]] {
            let p = answer(
                &s,
                &spec.clone().vlans(tags),
                &query("x.ads.test.", RecordType::A, true),
            );
            nxdomain(&p);
            if tags.len() == 2 {
                assert_eq!(p.vlans[0].0, 0x88a8);
                assert_eq!(p.vlans[1].0, 0x8100);
            }
        }
    }
}

#[test]
fn ipv4_options_are_kept_and_summed() {
    let s = sinkhole();
    for opts in [4, 40] {
        let spec = Spec {
            ip_options: opts,
            ..Spec::v4()
        };
        nxdomain(&answer(&s, &spec, &query("ads.test.", RecordType::A, true)));
    }
}

#[test]
fn https_query_is_answered() {
    let s = sinkhole();
    nxdomain(&answer(
        &s,
        &Spec::v4(),
        &query("ads.test.", RecordType::HTTPS, true),
    ));
}

#[test]
fn response_modes() {
    let spec = Spec::v4();
    let a = query("ads.test.", RecordType::A, true);
    let aaaa = query("ads.test.", RecordType::AAAA, true);
    let https = query("ads.test.", RecordType::HTTPS, false);

    let s = load(BLOCK, "", "nodata");
    let p = answer(&s, &spec, &a);
    assert_eq!(p.message.response_code(), ResponseCode::NoError);
    assert!(p.message.answers().is_empty());
    soa(&p, 10);

    let s = load(BLOCK, "", "refused");
    let p = answer(&s, &spec, &a);
    assert_eq!(p.message.response_code(), ResponseCode::Refused);
    assert!(p.message.answers().is_empty() && p.message.name_servers().is_empty());

    let s = load(BLOCK, "", "null");
    let p = answer(&s, &spec, &a);
    assert_eq!(
        p.message.answers()[0].data(),
        &RData::A("0.0.0.0".parse().unwrap())
    );
    let p = answer(&s, &Spec::v6(), &aaaa);
    assert_eq!(
        p.message.answers()[0].data(),
        &RData::AAAA("::".parse().unwrap())
    );

    let mut s = load(BLOCK, "", "198.18.0.10,2001:db8::10");
    let p = answer(&s, &spec, &a);
    assert_eq!(p.message.answers().len(), 1);
    assert_eq!(
        p.message.answers()[0].data(),
        &RData::A("198.18.0.10".parse().unwrap())
    );
    assert_eq!(p.message.answers()[0].ttl(), 10);
    let p = answer(&s, &spec, &aaaa);
    assert_eq!(
        p.message.answers()[0].data(),
        &RData::AAAA("2001:db8::10".parse().unwrap())
    );
    // Other types get NODATA.
    let p = answer(&s, &spec, &https);
    assert_eq!(p.message.response_code(), ResponseCode::NoError);
    assert!(p.message.answers().is_empty());
    soa(&p, 10);

    // The TTL follows the config.
    s.set_settings(&settings(&["--response", "198.18.0.10", "--ttl", "3600"]))
        .unwrap();
    let p = answer(&s, &spec, &a);
    assert_eq!(p.message.answers()[0].ttl(), 3600);
    // Only an IPv4 block page: AAAA gets NODATA with the SOA.
    let p = answer(&s, &spec, &aaaa);
    assert!(p.message.answers().is_empty());
    soa(&p, 3600);
}

#[test]
fn exact_subtree_and_allow() {
    let s = load(BLOCK, "allowed.ads.test\n", "nxdomain");
    let spec = Spec::v4();
    let f = |n: &str| frame::frame(&spec, &query(n, RecordType::A, true));
    // Exact: the name only.
    nxdomain(&answer(
        &s,
        &spec,
        &query("exact.test.", RecordType::A, true),
    ));
    passes(&s, &f("www.exact.test."));
    // Subtree: the name and below.
    nxdomain(&answer(
        &s,
        &spec,
        &query("tracker.test.", RecordType::A, true),
    ));
    nxdomain(&answer(
        &s,
        &spec,
        &query("a.b.c.tracker.test.", RecordType::A, true),
    ));
    passes(&s, &f("xtracker.test."));
    passes(&s, &f("test."));
    // Allow beats block: a subtree allow in the blocklist, an exact allow from the allowlist.
    passes(&s, &f("ok.tracker.test."));
    passes(&s, &f("deep.ok.tracker.test."));
    passes(&s, &f("allowed.ads.test."));
    nxdomain(&answer(
        &s,
        &spec,
        &query("sub.allowed.ads.test.", RecordType::A, true),
    ));
    let c = s.counters().unwrap();
    assert_eq!(c["allowed"], 3);
    assert_eq!(c["passed"], 3);
    assert_eq!(c["answered_exact"], 1);
    assert_eq!(c["answered_subtree"], 3);
}

#[test]
fn mixed_case_is_matched_and_echoed() {
    let s = sinkhole();
    let p = answer(
        &s,
        &Spec::v4(),
        &query("WwW.AdS.TeSt.", RecordType::A, true),
    );
    nxdomain(&p);
    assert_eq!(p.message.queries()[0].name().to_ascii(), "WwW.AdS.TeSt.");
}

#[test]
fn longest_name_is_answered() {
    let name = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(56) + ".test"
    );
    assert_eq!(name.len(), 253);
    let many = ["x"; 125].join(".") + ".test";
    assert_eq!(many.len(), 254);
    let s = load(&format!("{name}\n{}\n", &many[2..]), "", "nxdomain");
    for n in [&name, &many[2..].to_string()] {
        let p = answer(
            &s,
            &Spec::v4(),
            &query(&format!("{n}."), RecordType::A, true),
        );
        nxdomain(&p);
        let p = answer(
            &s,
            &Spec::v6(),
            &query(&format!("{n}."), RecordType::AAAA, true),
        );
        nxdomain(&p);
    }
}

/// A query (ID 0x4242, RD) whose question name is `wire_name`, as raw wire bytes.
fn with_name(wire_name: &[u8], edns: bool) -> Vec<u8> {
    let mut m = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns as u8];
    m.extend_from_slice(wire_name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    if edns {
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    m
}

/// Runs a query for a blocked name that hickory may not parse (whatever follows its question
/// is not read): the answer must be the sinkhole answer to exactly its question, with an OPT
/// record when the query's first additional record is one.
fn answer_raw(s: &Sinkhole, spec: &Spec, msg: &[u8], qlen: usize, edns: bool) -> Parsed {
    let (action, out) = run(s, &frame::frame(spec, msg));
    assert_eq!(action, XDP_TX, "expected an answer to {msg:02x?}");
    let p = frame::parse(&out).expect("a well-formed answer frame");
    let m = &p.message;
    assert_eq!(m.id(), u16::from_be_bytes([msg[0], msg[1]]));
    assert_eq!(m.message_type(), MessageType::Response);
    assert_eq!(
        &p.dns[12..qlen],
        &msg[12..qlen],
        "the question, byte for byte"
    );
    assert_eq!(
        m.extensions().is_some(),
        edns,
        "an OPT back only for an OPT"
    );
    if let Some(e) = m.extensions() {
        assert_eq!((e.version(), e.options().as_ref().len()), (0, 0));
    }
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(p.dns.len() <= msg.len() + 28 + 50);
    p
}

#[test]
fn blocked_names_are_answered_whatever_follows_the_question() {
    let s = sinkhole();
    let spec = Spec::v4();
    let ok = with_name(b"\x03ads\x04test\x00", true);
    let qlen = ok.len() - 11;
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = ok.clone();
        f(&mut m);
        m
    };
    let rdlen = |m: &mut Vec<u8>, n: u16| {
        let at = qlen + 9;
        m[at..at + 2].copy_from_slice(&n.to_be_bytes());
    };
    let cases: Vec<(Vec<u8>, bool, &str)> = vec![
        (ok.clone(), true, "plain"),
        ([&ok[..], b"junk"].concat(), true, "trailing bytes"),
        (
            edit(&|m| {
                rdlen(m, 7);
                m.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3]);
            }),
            true,
            "an option running past its record",
        ),
        (
            edit(&|m| {
                rdlen(m, 20);
                m.extend_from_slice(&[0, 12, 0, 0].repeat(5));
            }),
            true,
            "five options",
        ),
        (
            edit(&|m| {
                rdlen(m, 4);
                m.extend_from_slice(&[0, 8, 0, 0]);
            }),
            true,
            "an empty client subnet",
        ),
        (edit(&|m| m[qlen + 6] = 1), true, "EDNS version 1"),
        (
            edit(&|m| {
                m[11] = 2;
                // A TSIG-like record after the OPT.
                m.extend_from_slice(&[0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 2, 1, 2]);
            }),
            true,
            "a second additional record",
        ),
        (
            edit(&|m| m[11] = 0),
            false,
            "an OPT that ARCOUNT does not count",
        ),
        (edit(&|m| m[2] |= 0x02), true, "TC set"),
        (edit(&|m| m[7] = 1), true, "ANCOUNT 1"),
        (edit(&|m| m[qlen - 1] = 3), true, "class CHAOS"),
        (edit(&|m| m[qlen - 3] = 255), true, "type ANY"),
    ];
    for (msg, edns, what) in &cases {
        let before = s.counters().unwrap()["answered_subtree"];
        answer_raw(&s, &spec, msg, qlen, *edns);
        answer_raw(&s, &Spec::v6(), msg, qlen, *edns);
        assert_eq!(
            s.counters().unwrap()["answered_subtree"],
            before + 2,
            "{what}"
        );
    }
    // Stock clients' EDNS: a cookie, NSID, EXPIRE, keepalive and padding, as dig sends them.
    let mut q = query("x.ads.test.", RecordType::A, true);
    let opts: &[u8] = &[
        0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, // cookie
        0, 3, 0, 0, // NSID
        0, 9, 0, 0, // EXPIRE
        0, 11, 0, 0, // keepalive
        0, 12, 0, 40, // padding
    ];
    let qlen = q.len() - 11;
    let n = (opts.len() + 40) as u16;
    q[qlen + 9..qlen + 11].copy_from_slice(&n.to_be_bytes());
    q.extend_from_slice(opts);
    q.extend_from_slice(&[0; 40]);
    answer_raw(&s, &spec, &q, qlen, true);
}

#[test]
fn what_cannot_be_parsed_is_dropped_and_not_queries_pass() {
    let mut s = sinkhole();
    let spec = Spec::v4();
    let ok = with_name(b"\x03ads\x04test\x00", true);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = ok.clone();
        f(&mut m);
        m
    };
    let long = [
        b"\x3f".as_slice(),
        &[b'a'; 63],
        b"\x3f",
        &[b'a'; 63],
        b"\x3f",
        &[b'a'; 63],
        b"\x3f",
        &[b'a'; 63],
        b"\x00",
    ]
    .concat();
    let msgs: Vec<(Vec<u8>, &str)> = vec![
        (with_name(b"\x03www\xc0\x0c", true), "unparsed_compressed"),
        (with_name(b"\x03ads\xc0\x0c", false), "unparsed_compressed"),
        (with_name(b"\x43ads\x04test\x00", true), "unparsed_bad_name"),
        (with_name(&long, true), "unparsed_bad_name"),
        (ok[..20].to_vec(), "unparsed_truncated"),
        (ok[..ok.len() - 13].to_vec(), "unparsed_truncated"),
        (edit(&|m| m[5] = 2), "unparsed_questions"),
        (edit(&|m| m[5] = 0), "unparsed_questions"),
    ];
    let mut frames: Vec<(Vec<u8>, &str)> = msgs
        .iter()
        .map(|(m, c)| (frame::frame(&spec, m), *c))
        .collect();
    // A frame cut inside the name: the IP and UDP lengths still claim the whole message.
    let full = frame::frame(&spec, &ok);
    frames.push((full[..full.len() - 12].to_vec(), "unparsed_truncated"));
    // The first of several IPv4 fragments.
    let mut frag = full.clone();
    frag[14 + 6] = 0x20; // MF
    frames.push((frag, "unparsed_unsupported"));
    // IPv6 extension headers before UDP (destination options, hop-by-hop then a fragment
    // header), and a chain longer than the program walks.
    for chain in [&[60u8][..], &[0, 44], &[60, 60, 60, 60, 60]] {
        frames.push((
            frame::v6_with_extensions(&Spec::v6(), &ok, chain, 17),
            "unparsed_unsupported",
        ));
    }
    // DNS over TCP behind extension headers, which the TCP program never sees.
    frames.push((
        frame::v6_with_extensions(&Spec::v6(), &ok, &[60], 6),
        "unparsed_unsupported",
    ));
    for (f, counter) in &frames {
        let before = s.counters().unwrap();
        let (action, _) = run(&s, f);
        assert_eq!(action, XDP_DROP, "{counter}: {f:02x?}");
        let after = s.counters().unwrap();
        assert_eq!(after[counter], before[counter] + 1, "{counter}");
        assert_eq!(after["dropped_unparsed"], before["dropped_unparsed"] + 1);
    }
    // --pass-unparsed: the same frames pass, unchanged.
    s.set_settings(&settings(&["--pass-unparsed"])).unwrap();
    for (f, counter) in &frames {
        let before = s.counters().unwrap()[counter];
        passes(&s, f);
        assert_eq!(s.counters().unwrap()[counter], before + 1, "{counter}");
    }
    // Messages that are not queries pass, whatever the setting; so do a query for the root
    // and a name with extension headers that are no DNS (MLD behind hop-by-hop).
    for pass_unparsed in [&[][..], &["--pass-unparsed"]] {
        s.set_settings(&settings(pass_unparsed)).unwrap();
        for (m, counter) in [
            (edit(&|m| m[2] |= 0x80), "passed_not_query"),
            (edit(&|m| m[2] |= 0x28), "passed_not_query"),
            (edit(&|m| m[2] |= 0x20), "passed_not_query"),
            (with_name(b"\x00", true), "passed"),
        ] {
            let before = s.counters().unwrap()[counter];
            passes(&s, &frame::frame(&spec, &m));
            assert_eq!(s.counters().unwrap()[counter], before + 1, "{counter}");
        }
        passes(&s, &frame::v6_with_extensions(&Spec::v6(), &ok, &[0], 58));
    }
}

#[test]
fn other_traffic_passes_unchanged() {
    let s = sinkhole();
    let msg = query("ads.test.", RecordType::A, true);
    passes(
        &s,
        &frame::frame(
            &Spec {
                dport: 5353,
                ..Spec::v4()
            },
            &msg,
        ),
    );
    passes(
        &s,
        &frame::frame(
            &Spec {
                dport: 5353,
                ..Spec::v6()
            },
            &msg,
        ),
    );
    passes(
        &s,
        &frame::frame(&Spec::v4(), &query("notlisted.test.", RecordType::A, true)),
    );
    // Not IP, and a fragment.
    let mut arp = frame::frame(&Spec::v4(), &msg);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    passes(&s, &arp);
    let mut frag = frame::frame(&Spec::v4(), &msg);
    frag[14 + 6] = 0x01; // a later fragment: no ports
    passes(&s, &frag);
    let mut tcp = frame::frame(&Spec::v4(), &msg);
    tcp[14 + 9] = 6;
    passes(&s, &tcp);
    passes(&s, &[0u8; 14]);
    // With no policy set, DoT and DoQ are still dropped, by port alone.
    let mut dot = frame::frame(
        &Spec {
            dport: 853,
            ..Spec::v4()
        },
        &msg,
    );
    assert_eq!(run(&s, &dot).0, 1);
    dot[14 + 9] = 6;
    assert_eq!(run(&s, &dot).0, 1);
    let c = s.counters().unwrap();
    assert_eq!((c["dropped_doq"], c["dropped_dot"]), (1, 1));
    assert_eq!(c["frames"], 9);
    assert_eq!(c["answered_exact"] + c["answered_subtree"], 0);
}

#[test]
fn answers_go_back_whatever_resolver_was_asked() {
    let s = sinkhole();
    let spec = Spec {
        dst: IpAddr::V4("198.19.99.99".parse().unwrap()),
        ..Spec::v4()
    };
    let p = answer(&s, &spec, &query("ads.test.", RecordType::A, true));
    assert_eq!(p.src, spec.dst);
}

#[test]
fn a_real_list_is_answered_through_the_kernel() {
    let path = dnssink_tests::shared_list("stevenblack.domains.txt");
    let spec = ListSpec {
        path: path.clone(),
        opts: Options::block(),
    };
    let loaded = dnssink::load_lists(&[spec], false, false).unwrap();
    assert!(loaded.rules.len() > 140_000, "{}", loaded.summary());
    let s = Sinkhole::load(&loaded.rules, &settings(&[])).unwrap();
    let (_, all) = collect("sb", &std::fs::read(&path).unwrap(), &Options::block());
    let names: Vec<&str> = all.iter().step_by(997).map(|r| r.0.as_str()).collect();
    assert!(names.len() > 100);
    for n in &names {
        nxdomain(&answer(
            &s,
            &Spec::v4(),
            &query(&format!("{n}."), RecordType::A, true),
        ));
        // Exact rules: a child of a listed name passes (unless it is listed itself).
        let child = format!("dnssink-not-listed.{n}");
        if !loaded.rules.verdict(&child).blocked() {
            passes(
                &s,
                &frame::frame(
                    &Spec::v6(),
                    &query(&format!("{child}."), RecordType::AAAA, true),
                ),
            );
        }
    }
}

/// The query log, read as the daemon reads it: each answered query gives one event with its
/// client and its whole name, whatever room its length takes (`event::ROOM_WORDS`: names of
/// up to 32, 64, 128 and 256 bytes), over IPv4 and IPv6.
#[test]
fn answered_queries_are_logged_with_their_whole_name() {
    use dnssink_common::event::{Event, ROOM_WORDS, room_words};
    let mut s = load("||ads.test^\n", "", "nxdomain");
    let mut ring = s.take_events().unwrap();
    // Names whose wire forms are 10 to 255 bytes: every room, and both edges of each.
    let label = |n: usize| "a".repeat(n);
    let mut names = vec!["ads.test.".to_string()];
    for wire in [32usize, 33, 64, 65, 128, 129, 200, 255] {
        // `x.` labels of 63 bytes, then one to fill, before `ads.test.` (10 bytes).
        let mut rest = wire - 10;
        let mut name = String::new();
        while rest > 0 {
            let n = (rest - 1).min(63);
            let n = if rest - (n + 1) == 1 { n - 1 } else { n };
            name.push_str(&label(n));
            name.push('.');
            rest -= n + 1;
        }
        name.push_str("ads.test.");
        names.push(name);
    }
    let mut seen_rooms = std::collections::BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let spec = if i % 2 == 0 { Spec::v4() } else { Spec::v6() };
        let msg = query(name, RecordType::A, i % 3 == 0);
        answer(&s, &spec, &msg);
        let item = ring.next().expect("an event for the answered query");
        let e = Event::from_bytes(&item).expect("a whole event");
        let wire = e.name_len as usize;
        let got: Vec<String> = e
            .labels()
            .expect("a well-formed name")
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect();
        assert_eq!(format!("{}.", got.join(".")), *name);
        assert_eq!(
            item.len(),
            32 + room_words(wire) * 8,
            "the smallest room for {wire} bytes"
        );
        seen_rooms.insert(room_words(wire));
        let client = match spec.src {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        assert_eq!(e.client, client);
        assert_eq!(e.qtype, 1);
        drop(item);
        assert!(ring.next().is_none(), "one event per query");
    }
    assert_eq!(seen_rooms.into_iter().collect::<Vec<_>>(), ROOM_WORDS);
}

//! Keeping clients on the internal resolvers, blocked ports and destinations, and canaries,
//! through the loaded program with BPF_PROG_TEST_RUN: every frame's action, and the counters.

use std::net::IpAddr;

use dnssink::{
    bpf::Sinkhole,
    compile::RuleSet,
    iplist::IpRules,
    lists::{Kind, Options, collect},
};
use dnssink_common::policy::{PROTO_TCP, PROTO_UDP};
use dnssink_tests::frame::{self, Spec, query};
use dnssink_tests::{XDP_DROP, XDP_PASS, XDP_TX, settings_with};
use hickory_proto::{
    op::ResponseCode,
    rr::{RData, RecordType},
};

/// A sinkhole that blocks `ads.test`, with the canaries, internal resolvers 198.18.0.1 and
/// 2001:db8::1, tcp/5222 blocked, and the given blocked destinations.
fn sinkhole(ip_list: &str, canaries: bool, mode: &str) -> Sinkhole {
    let (_, rules) = collect("b", b"||ads.test^\n", &Options::block());
    let mut all: Vec<(&str, Kind)> = rules.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
    if canaries {
        all.extend(dnssink::CANARIES.iter().copied());
    }
    let rules = RuleSet::from_rules(all).unwrap();
    let mut ip = IpRules::default();
    ip.parse("ips", ip_list).unwrap();
    let mut s = Sinkhole::load_program(&Default::default()).unwrap();
    s.fill(&rules, &ip, &policy(&["--response", mode], &ip))
        .unwrap();
    s
}

/// The settings of [`sinkhole`]'s policy, with `args`.
fn policy(args: &[&str], ip: &IpRules) -> dnssink::plan::Settings {
    let mut all = vec![
        "--resolver",
        "198.18.0.1",
        "--resolver",
        "2001:db8::1",
        "--block-port",
        "tcp/5222",
    ];
    all.extend(args);
    settings_with(&all, ip)
}

fn run(s: &Sinkhole, input: &[u8]) -> (u32, Vec<u8>) {
    dnssink_tests::test_run(s, input)
}

fn to(dst: &str, dport: u16) -> Spec {
    let dst: IpAddr = dst.parse().unwrap();
    let base = if dst.is_ipv4() {
        Spec::v4()
    } else {
        Spec::v6()
    };
    Spec { dst, dport, ..base }
}

/// A frame of `proto` to `spec`'s destination and port (UDP frames with the protocol
/// changed: the program reads only the protocol and the ports).
fn packet(spec: &Spec, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame::frame(spec, payload);
    let at = 14 + 4 * spec.vlans.len() + if spec.dst.is_ipv4() { 9 } else { 6 };
    f[at] = proto;
    if spec.dst.is_ipv4() {
        // Keep the IPv4 header checksum right for the changed protocol byte.
        let l3 = 14 + 4 * spec.vlans.len();
        f[l3 + 10] = 0;
        f[l3 + 11] = 0;
        let sum: u32 = f[l3..l3 + 20]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .sum();
        let c = !(((sum & 0xffff) + (sum >> 16)) as u16);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    f
}

fn action(s: &Sinkhole, f: &[u8]) -> u32 {
    let (a, out) = run(s, f);
    if a == XDP_PASS {
        assert_eq!(out, f, "a passed frame is unchanged");
    }
    a
}

fn dns(name: &str) -> Vec<u8> {
    query(name, RecordType::A, true)
}

#[test]
fn dns_goes_only_to_the_internal_resolvers() {
    let s = sinkhole("", true, "nxdomain");
    // Allowed names: to an internal resolver they pass, to any other they are dropped.
    assert_eq!(
        action(&s, &frame::frame(&to("198.18.0.1", 53), &dns("ok.test."))),
        XDP_PASS
    );
    assert_eq!(
        action(&s, &frame::frame(&to("2001:db8::1", 53), &dns("ok.test."))),
        XDP_PASS
    );
    assert_eq!(
        action(&s, &frame::frame(&to("198.19.9.9", 53), &dns("ok.test."))),
        XDP_DROP
    );
    assert_eq!(
        action(
            &s,
            &frame::frame(&to("2001:db8:9::9", 53), &dns("ok.test."))
        ),
        XDP_DROP
    );
    // What cannot be parsed is dropped, wherever it goes: as DNS to another resolver, or as
    // unparsed to an internal one.
    let junk = [0u8; 12];
    assert_eq!(
        action(&s, &frame::frame(&to("198.19.9.9", 53), &junk)),
        XDP_DROP
    );
    assert_eq!(
        action(&s, &frame::frame(&to("198.18.0.1", 53), &junk)),
        XDP_DROP
    );
    assert_eq!(s.counters().unwrap()["dropped_unparsed"], 1);
    // Blocked names are answered in place, whatever resolver was asked.
    let (a, out) = run(
        &s,
        &frame::frame(&to("198.19.9.9", 53), &dns("x.ads.test.")),
    );
    assert_eq!(a, XDP_TX);
    assert_eq!(
        frame::parse(&out).unwrap().message.response_code(),
        ResponseCode::NXDomain
    );
    // DNS over TCP: only to an internal resolver.
    assert_eq!(
        action(&s, &packet(&to("198.19.9.9", 53), PROTO_TCP, b"x")),
        XDP_DROP
    );
    assert_eq!(
        action(&s, &packet(&to("198.18.0.1", 53), PROTO_TCP, b"x")),
        XDP_PASS
    );
    let c = s.counters().unwrap();
    assert_eq!(c["dropped_dns_udp_other_resolver"], 3);
    assert_eq!(c["dropped_dns_tcp_other_resolver"], 1);
    assert_eq!(c["answered_subtree"], 1);
}

/// DNS over TCP behind IPv6 extension headers, which the TCP program cannot read: dropped;
/// with --pass-unparsed, it still goes only to an internal resolver.
#[test]
fn unreadable_dns_over_tcp_still_goes_only_to_the_internal_resolvers() {
    let mut s = sinkhole("", false, "nxdomain");
    let msg = dns("x.ads.test.");
    let behind = |dst: &str| frame::v6_with_extensions(&to(dst, 53), &msg, &[60], PROTO_TCP);
    assert_eq!(action(&s, &behind("2001:db8::1")), XDP_DROP);
    s.set_settings(&policy(&["--pass-unparsed"], &IpRules::default()))
        .unwrap();
    assert_eq!(action(&s, &behind("2001:db8::1")), XDP_PASS);
    assert_eq!(action(&s, &behind("2001:db8:9::9")), XDP_DROP);
    let c = s.counters().unwrap();
    assert_eq!(c["unparsed_unsupported"], 3);
    assert_eq!(c["dropped_unparsed"], 1);
    assert_eq!(c["dropped_dns_tcp_other_resolver"], 1);
}

#[test]
fn dot_doq_and_blocked_ports_are_dropped() {
    let s = sinkhole("", false, "nxdomain");
    for dst in ["198.18.0.1", "198.19.9.9", "2001:db8:9::9"] {
        assert_eq!(
            action(&s, &packet(&to(dst, 853), PROTO_TCP, b"x")),
            XDP_DROP
        );
        assert_eq!(
            action(&s, &packet(&to(dst, 853), PROTO_UDP, b"x")),
            XDP_DROP
        );
        assert_eq!(
            action(&s, &packet(&to(dst, 5222), PROTO_TCP, b"x")),
            XDP_DROP
        );
        assert_eq!(
            action(&s, &packet(&to(dst, 5222), PROTO_UDP, b"x")),
            XDP_PASS
        );
        assert_eq!(
            action(&s, &packet(&to(dst, 443), PROTO_TCP, b"x")),
            XDP_PASS
        );
        assert_eq!(
            action(&s, &packet(&to(dst, 443), PROTO_UDP, b"x")),
            XDP_PASS
        );
    }
    let c = s.counters().unwrap();
    assert_eq!(
        (c["dropped_dot"], c["dropped_doq"], c["dropped_port"]),
        (3, 3, 3)
    );
    assert_eq!(c["dns_queries"], 0);
}

#[test]
fn blocked_destinations_v4_and_v6_with_and_without_ports() {
    let s = sinkhole(
        "216.239.37.125 tcp/5223,udp/3478\n198.19.5.0/24 any\n2001:db8:5::/48\n2001:db8:6::7 443\n",
        false,
        "nxdomain",
    );
    let cases = [
        ("216.239.37.125", PROTO_TCP, 5223, XDP_DROP),
        ("216.239.37.125", PROTO_UDP, 3478, XDP_DROP),
        ("216.239.37.125", PROTO_TCP, 80, XDP_PASS),
        ("216.239.37.126", PROTO_TCP, 5223, XDP_PASS),
        ("198.19.5.77", PROTO_TCP, 80, XDP_DROP),
        ("198.19.5.77", 1, 0, XDP_DROP), // ICMP: any
        ("198.19.6.1", PROTO_TCP, 80, XDP_PASS),
        ("2001:db8:5:ffff::1", PROTO_UDP, 9, XDP_DROP),
        ("2001:db8:6::7", PROTO_TCP, 443, XDP_DROP),
        ("2001:db8:6::7", PROTO_UDP, 443, XDP_DROP),
        ("2001:db8:6::7", PROTO_TCP, 80, XDP_PASS),
        ("2001:db8:7::1", PROTO_TCP, 443, XDP_PASS),
    ];
    for (dst, proto, port, want) in cases {
        assert_eq!(
            action(&s, &packet(&to(dst, port), proto, b"x")),
            want,
            "{dst} {proto}/{port}"
        );
    }
    // A DNS query to a blocked destination is dropped, unless its name is blocked.
    assert_eq!(
        action(&s, &frame::frame(&to("198.19.5.53", 53), &dns("ok.test."))),
        XDP_DROP
    );
    assert_eq!(
        action(&s, &frame::frame(&to("198.19.5.53", 53), &dns("ads.test."))),
        XDP_TX
    );
    // Seven drops in the table, and the query to a blocked destination.
    assert_eq!(s.counters().unwrap()["dropped_ip"], 8);
}

#[test]
fn canaries_are_answered_in_the_kernel() {
    // Even with a block-page response, the canaries get their own answers.
    let s = sinkhole("", true, "198.18.0.10");
    for (name, rcode, soa) in [
        ("use-application-dns.net.", ResponseCode::NXDomain, true),
        ("mask.icloud.com.", ResponseCode::NXDomain, true),
        ("mask-h2.icloud.com.", ResponseCode::NXDomain, true),
        ("resolver.arpa.", ResponseCode::NoError, true),
        ("_dns.resolver.arpa.", ResponseCode::NoError, true),
    ] {
        let (a, out) = run(
            &s,
            &frame::frame(&to("198.18.0.1", 53), &query(name, RecordType::SVCB, true)),
        );
        assert_eq!(a, XDP_TX, "{name}");
        let m = frame::parse(&out).unwrap().message;
        assert_eq!(m.response_code(), rcode, "{name}");
        assert!(m.answers().is_empty(), "{name}");
        assert_eq!(m.name_servers().len() == 1, soa, "{name}");
    }
    // The block page still serves blocked names.
    let (_, out) = run(&s, &frame::frame(&to("198.18.0.1", 53), &dns("ads.test.")));
    let m = frame::parse(&out).unwrap().message;
    assert_eq!(
        m.answers()[0].data(),
        &RData::A("198.18.0.10".parse().unwrap())
    );
    assert_eq!(s.counters().unwrap()["answered_canary"], 5);
    // --no-canaries: they go to the resolver.
    let s = sinkhole("", false, "nxdomain");
    assert_eq!(
        action(
            &s,
            &frame::frame(&to("198.18.0.1", 53), &dns("use-application-dns.net."))
        ),
        XDP_PASS
    );
}

/// Anti-reflection: with --clients, a blocked name is answered only for a source inside the
/// client networks. Any other source is passed untouched and counted, whatever it asks.
#[test]
fn only_clients_are_answered() {
    let mut s = sinkhole("", false, "nxdomain");
    let clients = ["--clients", "198.18.0.0/24", "--clients", "2001:db8::/64"];
    s.set_settings(&policy(&clients, &IpRules::default()))
        .unwrap();
    let from = |src: &str| {
        let src: IpAddr = src.parse().unwrap();
        let base = if src.is_ipv4() {
            Spec::v4()
        } else {
            Spec::v6()
        };
        Spec { src, ..base }
    };
    let q = dns("x.ads.test.");
    for inside in [
        "198.18.0.2",
        "198.18.0.255",
        "2001:db8::2",
        "2001:db8::ffff:1",
    ] {
        assert_eq!(
            action(&s, &frame::frame(&from(inside), &q)),
            XDP_TX,
            "{inside}"
        );
    }
    let outside = [
        "198.18.1.2",
        "203.0.113.9",
        "0.0.0.0",
        "255.255.255.255",
        "2001:db8:0:1::2",
        "::ffff:198.18.0.2",
        "::",
        "fe80::2",
    ];
    // A blocked name from outside: dropped, neither answered (a reflector) nor passed (the
    // resolver's real answer). An allowed name from outside passes.
    for spoofed in outside {
        assert_eq!(
            action(&s, &frame::frame(&from(spoofed), &q)),
            XDP_DROP,
            "{spoofed}"
        );
        assert_eq!(
            action(&s, &frame::frame(&from(spoofed), &dns("ok.test."))),
            XDP_PASS,
            "{spoofed}"
        );
    }
    let c = s.counters().unwrap();
    assert_eq!(c["dropped_foreign_client"], outside.len() as u64);
    assert_eq!(c["answered_subtree"], 4);
    // Replacing the networks takes effect at once; `any` answers every source.
    s.set_clients(&["::/0".parse().unwrap()]).unwrap();
    assert_eq!(action(&s, &frame::frame(&from("203.0.113.9"), &q)), XDP_TX);
    s.set_clients(&["203.0.113.0/24".parse().unwrap()]).unwrap();
    assert_eq!(action(&s, &frame::frame(&from("203.0.113.9"), &q)), XDP_TX);
    assert_eq!(action(&s, &frame::frame(&from("198.18.0.2"), &q)), XDP_DROP);
}

/// A query that cannot be parsed is dropped by default rather than passed to the resolver,
/// where it could resolve a blocked name; --pass-unparsed passes it. Well-formed queries are
/// unaffected either way.
#[test]
fn unparsed_queries_are_dropped_unless_passed_on_request() {
    let mut s = sinkhole("", false, "nxdomain");
    // A compression pointer in the question: the name is unreadable for dnssink.
    let mut compressed = dns("x.ads.test.");
    let at = 12 + 2; // inside the first label
    compressed[at - 2] = 0xc0;
    compressed[at - 1] = 12;
    let to_resolver = to("198.18.0.1", 53);
    for pass_unparsed in [&[][..], &["--pass-unparsed"]] {
        s.set_settings(&policy(pass_unparsed, &IpRules::default()))
            .unwrap();
        assert_eq!(
            action(&s, &frame::frame(&to_resolver, &compressed)),
            if !pass_unparsed.is_empty() {
                XDP_PASS
            } else {
                XDP_DROP
            }
        );
        assert_eq!(
            action(&s, &frame::frame(&to_resolver, &dns("ok.test."))),
            XDP_PASS
        );
        assert_eq!(
            action(&s, &frame::frame(&to_resolver, &dns("x.ads.test."))),
            XDP_TX
        );
        // Other traffic is untouched.
        assert_eq!(action(&s, &packet(&to_resolver, PROTO_TCP, b"x")), XDP_PASS);
    }
    let c = s.counters().unwrap();
    assert_eq!(c["dropped_unparsed"], 1);
    assert_eq!(c["unparsed_compressed"], 2);
}

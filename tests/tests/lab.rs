//! End to end in network namespaces: `dig` on a client, `dnssink attach` on the gateway's
//! LAN veth, and a real resolver (dnsmasq) on the gateway behind it.

use std::{process::Command, time::Duration};

use dnssink_tests::lab::{
    self, Dig, GW4, GW6, Lab, Netns, Proc, RESOLVER_A, RESOLVER_AAAA, dnssink_bin,
};
use dnssink_tests::{list, path};

const BLOCK: &str = "\
! adblock
||ads.test^
||tracker.test^
@@||ok.tracker.test^
";

fn sinkholed(d: &Dig) {
    d.assert_sinkholed();
}

fn resolved(d: &Dig, addr: &str) {
    d.assert_resolved(addr);
}

/// Blocked names get dnssink's answer and the rest the resolver's, over IPv4 and IPv6.
fn blocks_and_passes(lab: &mut Lab) {
    let block = list(BLOCK);
    let allow = list("allowed.ads.test\n");
    let line = lab
        .start_dnssink(&["--blocklist", path(&block), "--allowlist", path(&allow)])
        .unwrap();
    // auto mode picks generic on veth, where native XDP_TX needs a program on the peer.
    assert!(line.contains("generic mode"), "{line}");
    assert!(line.contains("4 rules from 2 lists"), "{line}");
    for server in [GW4, GW6] {
        for qtype in ["A", "AAAA", "HTTPS"] {
            sinkholed(&lab.dig(server, "ads.test", qtype).unwrap());
            sinkholed(&lab.dig(server, "WWW.Tracker.Test", qtype).unwrap());
        }
        let d = lab.dig(server, "ads.test", "A").unwrap();
        assert!(d.question[0].contains("ads.test."), "{}", d.text);
        resolved(&lab.dig(server, "example.test", "A").unwrap(), RESOLVER_A);
        resolved(
            &lab.dig(server, "example.test", "AAAA").unwrap(),
            RESOLVER_AAAA,
        );
        resolved(
            &lab.dig(server, "ok.tracker.test", "A").unwrap(),
            RESOLVER_A,
        );
        resolved(
            &lab.dig(server, "allowed.ads.test", "A").unwrap(),
            RESOLVER_A,
        );
        sinkholed(&lab.dig(server, "sub.allowed.ads.test", "A").unwrap());
    }
}

/// SIGTERM detaches dnssink and leaves nothing on the interface: blocked names reach the
/// resolver again.
fn stops_cleanly(lab: &mut Lab) {
    let (status, out) = lab.procs.last_mut().unwrap().stop().unwrap();
    assert!(status.success(), "{out:?}");
    let detached = format!("detached from {}", lab.iface);
    assert!(out.iter().any(|l| l.contains(&detached)), "{out:?}");
    let link = lab::run(lab.gateway.cmd("ip").args(["link", "show", lab.iface])).unwrap();
    assert!(!String::from_utf8_lossy(&link.stdout).contains("xdp"));
    resolved(&lab.dig(GW4, "ads.test", "A").unwrap(), RESOLVER_A);
}

#[test]
fn blocks_and_passes_over_ipv4_and_ipv6() {
    let mut lab = Lab::new().unwrap();
    blocks_and_passes(&mut lab);
    // Blocked names are answered whichever resolver the client asked; the rest pass on, and
    // a resolver that is not there never answers.
    lab.client
        .sh("ip route add 198.19.0.0/16 via 198.18.0.1")
        .unwrap();
    sinkholed(&lab.dig("198.19.0.53", "ads.test", "A").unwrap());
    assert!(lab.dig("198.19.0.53", "example.test", "A").is_err());
    stops_cleanly(&mut lab);
}

#[test]
fn blocks_and_passes_on_a_vlan() {
    let mut lab = Lab::with_vlan().unwrap();
    blocks_and_passes(&mut lab);
    stops_cleanly(&mut lab);
}

#[test]
fn block_page_address_and_ttl() {
    let mut lab = Lab::new().unwrap();
    let block = list("0.0.0.0 ads.test\n");
    lab.start_dnssink(&[
        "--blocklist",
        path(&block),
        "--response",
        "198.18.0.10,2001:db8::10",
        "--ttl",
        "42",
    ])
    .unwrap();
    for server in [GW4, GW6] {
        let d = lab.dig(server, "ads.test", "A").unwrap();
        assert_eq!(d.status, "NOERROR", "{}", d.text);
        assert_eq!(d.answers.len(), 1, "{}", d.text);
        let f: Vec<&str> = d.answers[0].split_whitespace().collect();
        assert_eq!(
            f,
            ["ads.test.", "42", "IN", "A", "198.18.0.10"],
            "{}",
            d.text
        );
        let d = lab.dig(server, "ads.test", "AAAA").unwrap();
        assert!(d.answers[0].ends_with("2001:db8::10"), "{}", d.text);
        // HTTPS and other types: NODATA with the SOA.
        let d = lab.dig(server, "ads.test", "HTTPS").unwrap();
        assert_eq!(d.status, "NOERROR");
        assert!(d.answers.is_empty() && d.from_dnssink(), "{}", d.text);
        // Hosts entries are exact.
        resolved(&lab.dig(server, "www.ads.test", "A").unwrap(), RESOLVER_A);
    }
}

#[test]
fn a_real_list_blocks_its_names() {
    let file = dnssink_tests::shared_list("hagezi-light.wildcard.txt");
    let text = std::fs::read_to_string(&file).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("*."))
        .step_by(6007)
        .collect();
    assert!(names.len() >= 20);
    let mut lab = Lab::new().unwrap();
    let line = lab
        .start_dnssink(&["--blocklist", file.to_str().unwrap()])
        .unwrap();
    assert!(line.contains("122680 rules"), "{line}");
    for n in &names {
        sinkholed(&lab.dig(GW4, n, "A").unwrap());
        sinkholed(&lab.dig(GW6, &format!("deep.below.{n}"), "AAAA").unwrap());
    }
    for n in ["example.test", "not-on-the-list.example"] {
        resolved(&lab.dig(GW4, n, "A").unwrap(), RESOLVER_A);
    }
}

/// Runs `dnssink` and expects it to fail with `needle` in its error.
fn fails_with(ns: Option<&Netns>, args: &[&str], needle: &str) {
    let bin = dnssink_bin().unwrap();
    // Under `timeout`: a command that wrongly succeeds would attach and run forever.
    let mut cmd = match ns {
        Some(ns) => ns.cmd("timeout"),
        None => Command::new("timeout"),
    };
    cmd.arg("60").arg(&bin);
    let out = cmd.args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn clear_errors_and_nothing_left_attached() {
    let ns = Netns::new("errors").unwrap();
    // A bridge: an interface without native XDP (this kernel has no dummy driver).
    ns.sh("ip link add br0 type bridge\nip link set br0 up\nip addr add 198.18.5.1/24 dev br0")
        .unwrap();
    ns.sh("ip link add br1 type bridge\nip link set br1 up")
        .unwrap();
    let block = list(BLOCK);
    let b = path(&block);
    fails_with(
        Some(&ns),
        &["attach", "nope0", "--blocklist", b],
        "no such interface: nope0",
    );
    fails_with(
        Some(&ns),
        &["attach", "br0", "--blocklist", "/nonexistent/list.txt"],
        "blocklist /nonexistent/list.txt: cannot read /nonexistent/list.txt",
    );
    fails_with(
        Some(&ns),
        &["attach", "br0", "--blocklist", b, "--response", "nxdomian"],
        "--response",
    );
    fails_with(
        Some(&ns),
        &["attach", "br0", "--blocklist", b, "--ttl=abc"],
        "--ttl",
    );
    fails_with(
        Some(&ns),
        &["attach", "br1", "--blocklist", b],
        "br1 has no IP address to take the client networks from: give them with --clients",
    );
    fails_with(
        Some(&ns),
        &[
            "attach",
            "br0",
            "--blocklist",
            b,
            "--clients",
            "198.18.0.0/33",
        ],
        "--clients",
    );
    fails_with(
        Some(&ns),
        &["attach", "br0", "--blocklist", b, "--mode", "native"],
        "br0 does not support native XDP; try --mode generic",
    );
    // Not root: no capabilities.
    let bin = dnssink_bin().unwrap();
    let out = ns
        .cmd("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .args(["attach", "br0", "--blocklist", b])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs root, or the capabilities CAP_BPF and CAP_NET_ADMIN"),
        "{err}"
    );
    // An XDP program already there.
    let mut first = Proc::spawn("dnssink", {
        let mut c = ns.cmd(&bin);
        c.args(["attach", "br0", "--blocklist", b]);
        c
    })
    .unwrap();
    first
        .wait_for("dnssink: attached", Duration::from_secs(60))
        .unwrap();
    fails_with(
        Some(&ns),
        &["attach", "br0", "--blocklist", b],
        "already attached to br0",
    );
    first.stop().unwrap();
    let link = lab::run(ns.cmd("ip").args(["link", "show", "br0"])).unwrap();
    assert!(!String::from_utf8_lossy(&link.stdout).contains("xdp"));
}

/// Anti-reflection in the lab: queries from a source outside the LAN's subnets (spoofed, or a
/// host that should not be there) are not answered by dnssink, and are counted.
#[test]
fn spoofed_sources_are_not_answered() {
    let mut lab = Lab::new().unwrap();
    lab.client
        .sh("ip addr add 198.19.77.7/32 dev lan0\nip -6 addr add 2001:db8:77::7/128 dev lan0 nodad")
        .unwrap();
    let block = list(BLOCK);
    let line = lab.start_dnssink(&["--blocklist", path(&block)]).unwrap();
    assert!(
        line.contains("answering 198.18.0.0/24, 2001:db8::/64"),
        "{line}"
    );
    sinkholed(&lab.dig(GW4, "ads.test", "A").unwrap());
    // The gateway has no route back to these sources: only dnssink could answer them.
    for (server, src) in [(GW4, "198.19.77.7"), (GW6, "2001:db8:77::7")] {
        let d = lab.dig_with(server, "ads.test", "A", &["-b", src]);
        assert!(
            d.is_err() || !d.unwrap().from_dnssink(),
            "{src} was answered"
        );
    }
    let out = lab.run_dnssink(&["stats", "--json"]).unwrap();
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains("\"dropped_foreign_client\":2"), "{stats}");
    assert!(stats.contains("\"answered_subtree\":1"), "{stats}");
    lab.procs.pop();
    // Named networks, or `any`, are answered.
    lab.start_dnssink(&[
        "--blocklist",
        path(&block),
        "--clients",
        "198.19.77.0/24",
        "--clients",
        "any",
    ])
    .unwrap();
    sinkholed(
        &lab.dig_with(GW4, "ads.test", "A", &["-b", "198.19.77.7"])
            .unwrap(),
    );
    sinkholed(
        &lab.dig_with(GW6, "ads.test", "A", &["-b", "2001:db8:77::7"])
            .unwrap(),
    );
}

/// The LAN of an OpenWrt router: dnssink on `br-lan`, a bridge with a veth port per client.
/// Both clients' blocked names get the sinkhole answer and the rest the resolver's, over IPv4
/// and IPv6, and the bridge still carries their traffic to each other.
#[test]
fn blocks_and_passes_on_a_bridge() {
    let mut lab = Lab::with_bridge().unwrap();
    let block = list(BLOCK);
    let line = lab.start_dnssink(&["--blocklist", path(&block)]).unwrap();
    // A bridge has no native XDP: auto mode takes generic.
    assert!(line.contains("generic mode"), "{line}");
    let second = lab.second.as_ref().unwrap();
    for client in [&lab.client, second] {
        for server in [GW4, GW6] {
            let dig = |name: &str, qtype: &str| lab::dig_from(client, server, name, qtype, &[]);
            sinkholed(&dig("ads.test", "A").unwrap());
            sinkholed(&dig("www.tracker.test", "AAAA").unwrap());
            resolved(&dig("example.test", "A").unwrap(), RESOLVER_A);
            resolved(&dig("ok.tracker.test", "AAAA").unwrap(), RESOLVER_AAAA);
        }
    }
    // Between two ports the bridge forwards by itself: a frame from one client to the other
    // never goes up to br-lan, where the program is. A DNS server on the second client
    // answers the first one directly (a resolver on a LAN port is out of dnssink's reach).
    let host = lab::resolver(second, "LAN dnsmasq", &[lab::SECOND4], &["198.18.77.7"]).unwrap();
    lab.procs.insert(0, host);
    resolved(
        &lab::dig_from(&lab.client, lab::SECOND4, "example.test", "A", &[]).unwrap(),
        "198.18.77.7",
    );
    stops_cleanly(&mut lab);
}

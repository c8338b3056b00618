//! Fail closed, tried as a user would: every way a stock client can ask for a blocked name
//! (UDP and TCP, any EDNS, any type, several queries on a connection, a query cut across
//! segments, crafted datagrams) gets the sinkhole answer or a fast failure, and the resolver
//! (dnsmasq with `--log-queries`) never sees a query for a blocked name. The same variants
//! for an allowed name still get the resolver's answer.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use dnssink_tests::{
    frame::query,
    lab::{Dig, GATEWAY_IF, GW4, GW6, Lab, RESOLVER_A, RESOLVER_AAAA, in_netns, run},
};
use hickory_proto::{
    op::{Message, ResponseCode},
    rr::RecordType,
};

const BLOCK: &str = "||ads.test^\n";
const BLOCKED: &str = "x.ads.test";
const ALLOWED: &str = "ok.test";

fn list() -> tempfile::NamedTempFile {
    dnssink_tests::list(BLOCK)
}

/// The lab with dnssink attached as a new user would, internal resolvers given.
fn lab(list: &tempfile::NamedTempFile) -> Lab {
    let mut lab = Lab::with_query_log().unwrap();
    lab.start_dnssink(&[
        "--blocklist",
        dnssink_tests::path(list),
        "--resolver",
        GW4,
        "--resolver",
        GW6,
    ])
    .unwrap();
    lab
}

/// Asserts that the resolver saw no query for a blocked name, and returns what it saw.
fn resolver_saw_no_blocked_name(lab: &mut Lab) -> Vec<String> {
    let log = lab.resolver_log();
    let leaked: Vec<&String> = log.iter().filter(|l| l.contains("ads.test")).collect();
    assert!(
        leaked.is_empty(),
        "the resolver saw blocked names: {leaked:#?}"
    );
    log
}

fn dig(lab: &Lab, server: &str, name: &str, qtype: &str, opts: &[&str]) -> Result<Dig> {
    lab.dig_with(server, name, qtype, opts)
}

#[test]
fn dig_variants_get_the_sinkhole_answer_and_the_resolver_sees_none() {
    let l = list();
    let mut lab = lab(&l);
    let five: Vec<String> = (0..5)
        .map(|i| format!("+ednsopt={}:00", 65001 + i))
        .collect();
    let five: Vec<&str> = five.iter().map(String::as_str).collect();
    let variants: Vec<(&str, Vec<&str>, &str)> = vec![
        ("plain", vec![], "A"),
        ("+tcp", vec!["+tcp"], "A"),
        ("+tcp AAAA", vec!["+tcp"], "AAAA"),
        ("five EDNS options", five, "A"),
        (
            "+cookie +nsid +expire +keepalive +padding=64",
            vec!["+cookie", "+nsid", "+expire", "+keepalive", "+padding=64"],
            "A",
        ),
        ("+edns=1", vec!["+edns=1", "+noednsnegotiation"], "A"),
        ("ANY", vec![], "ANY"),
        ("ANY over TCP", vec!["+tcp"], "ANY"),
        ("+noedns TXT", vec!["+noedns"], "TXT"),
        ("+dnssec HTTPS", vec!["+dnssec"], "HTTPS"),
    ];
    let mut table = Vec::new();
    for server in [GW4, GW6] {
        for (what, opts, qtype) in &variants {
            let d = dig(&lab, server, BLOCKED, qtype, opts)
                .unwrap_or_else(|e| panic!("{what} @{server}: {e:#}"));
            assert_eq!(d.status, "NXDOMAIN", "{what} @{server}:\n{}", d.text);
            assert!(d.from_dnssink(), "{what} @{server}:\n{}", d.text);
            // The allowed name, the same way: the resolver's answer.
            let a = dig(&lab, server, ALLOWED, qtype, opts)
                .unwrap_or_else(|e| panic!("{what} @{server} (allowed): {e:#}"));
            // The resolver's own answer (dnsmasq refuses the types it has no address for).
            assert!(!a.from_dnssink(), "{what} @{server} (allowed):\n{}", a.text);
            if *qtype == "A" {
                a.assert_resolved(RESOLVER_A);
            } else if *qtype == "AAAA" {
                a.assert_resolved(RESOLVER_AAAA);
            }
            let ms = d
                .text
                .lines()
                .find_map(|l| l.strip_prefix(";; Query time: "))
                .unwrap_or("?")
                .to_string();
            table.push(format!("{what} @{server}: {} in {ms}", d.status));
        }
    }
    // kdig, where it differs: its own TCP and EDNS code.
    for server in [GW4, GW6] {
        for opts in [
            &["+tcp"][..],
            &["+tcp", "+padding=128", "+nsid"],
            &["+edns=1"],
        ] {
            let out = run(lab
                .client
                .cmd("kdig")
                .arg(format!("@{server}"))
                .arg(BLOCKED)
                .args(["+retry=0", "+time=2"])
                .args(opts))
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("status: NXDOMAIN") && text.contains("dnssink.invalid."),
                "kdig {opts:?} @{server}:\n{text}"
            );
            table.push(format!("kdig {} @{server}: NXDOMAIN", opts.join(" ")));
        }
    }
    let log = resolver_saw_no_blocked_name(&mut lab);
    assert!(
        log.iter().filter(|l| l.contains(ALLOWED)).count() >= variants.len() * 2,
        "the resolver answered the allowed names: {log:#?}"
    );
    // Nothing is left open at the resolver for the answered TCP queries.
    std::thread::sleep(Duration::from_millis(300));
    let ss = run(lab
        .gateway
        .cmd("ss")
        .args(["-Htn", "state", "established", "( sport = :53 )"]))
    .unwrap();
    let open = String::from_utf8_lossy(&ss.stdout);
    assert!(
        open.trim().is_empty(),
        "connections left at the resolver:\n{open}"
    );
    let out = lab.run_dnssink(&["stats", "--json"]).unwrap();
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains("\"answered_tcp\":"), "{stats}");
    println!("{}", table.join("\n"));
    println!(
        "resolver saw {} queries, none for a blocked name",
        log.len()
    );
}

/// A DNS-over-TCP client in the client's namespace: one connection, messages written as told.
fn tcp_exchange(
    lab: &Lab,
    server: &str,
    f: impl FnOnce(&mut TcpStream) -> Result<()> + Send,
) -> Result<()> {
    let addr: SocketAddr = if server.contains(':') {
        format!("[{server}]:53")
    } else {
        format!("{server}:53")
    }
    .parse()?;
    in_netns(&lab.client.name, || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        f(&mut s)
    })
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

/// Reads one message off the stream: Ok(None) at a reset or the end.
fn read_message(s: &mut TcpStream) -> Result<Option<Message>> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e).context("reading a length"),
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).context("reading a message")?;
    Ok(Some(Message::from_vec(&msg)?))
}

fn assert_resolver_answer(m: &Message, qtype: RecordType) {
    assert_eq!(m.response_code(), ResponseCode::NoError);
    let want = if qtype == RecordType::A {
        RESOLVER_A
    } else {
        RESOLVER_AAAA
    };
    assert!(
        m.answers().iter().any(|r| r.data().to_string() == want),
        "{m:?}"
    );
}

fn assert_sinkhole(m: &Message) {
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(m.name_servers()[0].to_string().contains("dnssink.invalid."));
}

#[test]
fn tcp_streams_several_queries_and_cut_segments() {
    let l = list();
    let mut lab = lab(&l);
    let mut table = Vec::new();
    for server in [GW4, GW6] {
        // Several allowed queries on one connection, one after another, then two pipelined
        // in one write: each gets the resolver's answer.
        tcp_exchange(&lab, server, |s| {
            for qtype in [RecordType::A, RecordType::AAAA, RecordType::A] {
                s.write_all(&framed(&query("ok.test.", qtype, true)))?;
                assert_resolver_answer(&read_message(s)?.context("an answer")?, qtype);
            }
            let both = [
                framed(&query("one.ok.test.", RecordType::A, true)),
                framed(&query("two.ok.test.", RecordType::AAAA, true)),
            ]
            .concat();
            s.write_all(&both)?;
            for _ in 0..2 {
                let m = read_message(s)?.context("a pipelined answer")?;
                let q = m.queries()[0].query_type();
                assert_resolver_answer(&m, q);
            }
            Ok(())
        })
        .unwrap();
        table.push(format!(
            "@{server}: 3 sequential + 2 pipelined allowed: resolver's answers"
        ));
        // A blocked name first: the sinkhole answer, then the end of the stream.
        let t = Instant::now();
        tcp_exchange(&lab, server, |s| {
            s.write_all(&framed(&query("x.ads.test.", RecordType::A, true)))?;
            assert_sinkhole(&read_message(s)?.context("the sinkhole answer")?);
            assert!(read_message(s)?.is_none(), "the stream ends");
            Ok(())
        })
        .unwrap();
        table.push(format!(
            "@{server}: blocked first: sinkhole answer in {:?}",
            t.elapsed()
        ));
        // A blocked name after an allowed one: the allowed one answered, then a reset, at
        // once.
        tcp_exchange(&lab, server, |s| {
            s.write_all(&framed(&query("ok.test.", RecordType::A, true)))?;
            assert_resolver_answer(&read_message(s)?.context("an answer")?, RecordType::A);
            let t = Instant::now();
            s.write_all(&framed(&query("x.ads.test.", RecordType::A, true)))?;
            assert!(read_message(s)?.is_none(), "a reset, not an answer");
            assert!(t.elapsed() < Duration::from_secs(1), "a fast failure");
            Ok(())
        })
        .unwrap();
        table.push(format!("@{server}: blocked after allowed: reset at once"));
        // The length prefix and the message in segments of their own.
        for (name, blocked) in [("x.ads.test.", true), ("ok.test.", false)] {
            tcp_exchange(&lab, server, |s| {
                let f = framed(&query(name, RecordType::A, true));
                s.write_all(&f[..2])?;
                std::thread::sleep(Duration::from_millis(100));
                s.write_all(&f[2..])?;
                let m = read_message(s)?.context("an answer")?;
                if blocked {
                    assert_sinkhole(&m);
                } else {
                    assert_resolver_answer(&m, RecordType::A);
                }
                Ok(())
            })
            .unwrap();
        }
        table.push(format!(
            "@{server}: prefix and message apart: answered right"
        ));
        // A question cut in two: a reset, never the resolver's answer.
        tcp_exchange(&lab, server, |s| {
            let f = framed(&query("x.ads.test.", RecordType::A, true));
            s.write_all(&f[..20])?;
            std::thread::sleep(Duration::from_millis(100));
            let _ = s.write_all(&f[20..]);
            assert!(read_message(s)?.is_none(), "a reset");
            Ok(())
        })
        .unwrap();
        table.push(format!("@{server}: blocked question cut in two: reset"));
    }
    let log = resolver_saw_no_blocked_name(&mut lab);
    println!("{}", table.join("\n"));
    println!(
        "resolver saw {} queries, none for a blocked name",
        log.len()
    );
}

/// Sends a crafted DNS message over UDP from the client: the reply, if one comes within a
/// second.
fn udp_exchange(lab: &Lab, server: &str, msg: Vec<u8>) -> Option<Vec<u8>> {
    let (bind, addr) = if server.contains(':') {
        ("[::]:0", format!("[{server}]:53"))
    } else {
        ("0.0.0.0:0", format!("{server}:53"))
    };
    in_netns(&lab.client.name, || {
        let s = UdpSocket::bind(bind)?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.send_to(&msg, &addr)?;
        let mut buf = vec![0u8; 4096];
        Ok(s.recv(&mut buf).ok().map(|n| buf[..n].to_vec()))
    })
    .unwrap()
}

#[test]
fn crafted_datagrams_never_reach_the_resolver_with_a_blocked_name() {
    let l = list();
    let mut lab = lab(&l);
    let blocked = query("x.ads.test.", RecordType::A, true);
    let mut compressed = query("x.ads.test.", RecordType::A, false);
    // "x" then a pointer to the rest at an "ads.test" written after the question.
    let tail = compressed.len();
    compressed.extend_from_slice(b"\x03ads\x04test\x00");
    compressed.truncate(12 + 2);
    compressed.extend_from_slice(&[0xc0, tail as u8, 0, 1, 0, 1]);
    compressed.extend_from_slice(b"\x03ads\x04test\x00");
    let mut two = query("ok.test.", RecordType::A, false);
    two[5] = 2;
    two.extend_from_slice(b"\x01x\x03ads\x04test\x00\x00\x01\x00\x01");
    let garbage = [&blocked[..], b"trailing garbage"].concat();
    // Too big for one frame: the kernel sends it in IPv4 fragments.
    let fragmented = [&blocked[..], &[0u8; 3000][..]].concat();
    let mut table = Vec::new();
    for server in [GW4, GW6] {
        let r = udp_exchange(&lab, server, garbage.clone()).expect("an answer");
        assert_sinkhole(&Message::from_vec(&r).unwrap());
        table.push(format!("@{server}: trailing garbage: sinkhole answer"));
        for (what, m) in [
            ("compressed question", &compressed),
            ("two questions", &two),
        ] {
            assert!(
                udp_exchange(&lab, server, m.clone()).is_none(),
                "{what} @{server} was answered"
            );
            table.push(format!("@{server}: {what}: dropped"));
        }
    }
    assert!(udp_exchange(&lab, GW4, fragmented).is_none());
    table.push("@198.18.0.1: IPv4 fragments: dropped".into());
    let log = resolver_saw_no_blocked_name(&mut lab);
    let out = lab.run_dnssink(&["stats", "--json"]).unwrap();
    let stats = String::from_utf8_lossy(&out.stdout);
    for c in [
        "unparsed_compressed",
        "unparsed_questions",
        "unparsed_unsupported",
    ] {
        assert!(!stats.contains(&format!("\"{c}\":0")), "{c}: {stats}");
    }
    println!("{}", table.join("\n"));
    println!(
        "resolver saw {} queries, none for a blocked name",
        log.len()
    );
}

#[test]
fn the_gateways_own_addresses_count_as_internal_resolvers() {
    let l = list();
    let lab = lab(&l);
    // The link-local addresses of a fresh link are tentative for a while (duplicate address
    // detection): the kernel neither sends from one nor takes anything for it until then.
    // Both ends must settle, and the daemon re-reads the gateway's addresses every second.
    let settled = |ns: &dnssink_tests::lab::Netns| -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = run(ns.cmd("ip").args([
                "-6", "-o", "addr", "show", "dev", GATEWAY_IF, "scope", "link",
            ]))
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if (text.contains("inet6") && !text.contains("tentative")) || Instant::now() > deadline
            {
                break text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let link_local = |lab: &Lab| -> String {
        settled(&lab.client);
        let text = settled(&lab.gateway);
        std::thread::sleep(Duration::from_millis(1500));
        text.split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .unwrap_or_else(|| panic!("no link-local address: {text}"))
            .to_string()
    };
    let ll = link_local(&lab);
    // No resolver listens there, so the gateway's kernel refuses the query at once (ICMP): it
    // was not dropped as DNS to another resolver. A drop would show as a timeout.
    let dropped = |lab: &Lab| -> u64 {
        let out = lab.run_dnssink(&["stats", "--json"]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|c| c["dropped_dns_udp_other_resolver"].as_u64())
            .or_else(|| v["dropped_dns_udp_other_resolver"].as_u64())
            .unwrap_or_else(|| panic!("{v}"))
    };
    let ask = |lab: &Lab, server: &str| {
        let out = lab
            .client
            .cmd("dig")
            .args([&format!("@{server}"), ALLOWED, "+tries=1", "+time=2"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = ask(&lab, &format!("{ll}%lan0"));
    assert!(!text.contains("timed out"), "{text}");
    assert_eq!(dropped(&lab), 0);
    // Another resolver, through the gateway, is still cut off.
    lab.client
        .sh("ip route add 198.19.77.0/24 via 198.18.0.1")
        .unwrap();
    let before = dropped(&lab);
    let text = ask(&lab, "198.19.77.7");
    assert!(text.contains("timed out"), "{text}");
    assert_eq!(dropped(&lab), before + 1);
    // An address the gateway gains later counts within a few seconds.
    lab.gateway
        .sh(&format!("ip addr add 198.18.0.53/24 dev {GATEWAY_IF}"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let text = ask(&lab, "198.18.0.53");
    assert!(!text.contains("timed out"), "{text}");
    assert_eq!(dropped(&lab), before + 1);
}

//! Clients stay on the internal resolver, in a lab of three namespaces: the client, the
//! gateway (dnssink on its LAN veth, dnsmasq as the internal resolver, routing to `wan0`), and
//! an outside host with a resolver of its own and TCP and UDP listeners.

use std::{
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use dnssink_tests::lab::{GW4, GW6, Lab, OUT4, OUT6, OUTSIDE_A, RESOLVER_A, in_netns};
use dnssink_tests::list;

/// Listens on the outside host until `stop`, recording every TCP connection and UDP datagram
/// as "tcp ADDR" or "udp ADDR".
fn listen(ns: &str, stop: &AtomicBool, seen: &Mutex<Vec<String>>) {
    in_netns(ns, || {
        let mut tcp = Vec::new();
        let mut udp = Vec::new();
        for host in [OUT4, OUT6] {
            for port in [853u16, 8443, 8444] {
                let addr = SocketAddr::new(host.parse()?, port);
                let l = TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                tcp.push((addr, l));
            }
            for port in [853u16, 8445] {
                let addr = SocketAddr::new(host.parse()?, port);
                let u = UdpSocket::bind(addr)?;
                u.set_nonblocking(true)?;
                udp.push((addr, u));
            }
        }
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
            for (addr, l) in &tcp {
                if l.accept().is_ok() {
                    seen.lock().unwrap().push(format!("tcp {addr}"));
                }
            }
            for (addr, u) in &udp {
                if u.recv(&mut buf).is_ok() {
                    seen.lock().unwrap().push(format!("udp {addr}"));
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    })
    .unwrap();
}

fn connects(lab: &Lab, host: &str, port: u16) -> bool {
    let addr = SocketAddr::new(host.parse().unwrap(), port);
    in_netns(&lab.client.name, || {
        Ok(TcpStream::connect_timeout(&addr, Duration::from_millis(1500)).is_ok())
    })
    .unwrap()
}

fn send_udp(lab: &Lab, host: &str, port: u16) {
    let addr = SocketAddr::new(host.parse().unwrap(), port);
    in_netns(&lab.client.name, || {
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        UdpSocket::bind(bind)?.send_to(b"hello", addr)?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn clients_stay_on_the_internal_resolver() {
    let mut lab = Lab::with_outside().unwrap();
    let block = list("||ads.test^\n");
    let ips = list(
        "# one port of the outside host on each family\n198.19.0.2 tcp/8444\n2001:db8:1::2/128 tcp/8443\n",
    );
    let line = lab
        .start_dnssink(&[
            "--blocklist",
            block.path().to_str().unwrap(),
            "--resolver",
            GW4,
            "--resolver",
            GW6,
            "--block-ip",
            ips.path().to_str().unwrap(),
        ])
        .unwrap();
    assert!(
        line.contains("DNS only to 198.18.0.1, 2001:db8::1"),
        "{line}"
    );
    assert!(line.contains("2 blocked destinations"), "{line}");

    // DNS to the outside resolver: no answer, over UDP or TCP, IPv4 or IPv6.
    assert!(lab.dig(OUT4, "example.test", "A").is_err());
    assert!(lab.dig(OUT6, "example.test", "AAAA").is_err());
    assert!(lab.dig_with(OUT4, "example.test", "A", &["+tcp"]).is_err());
    // The internal resolver answers, over UDP and TCP.
    for opts in [&[][..], &["+tcp"][..]] {
        let d = lab.dig_with(GW4, "example.test", "A", opts).unwrap();
        assert!(
            d.answers.iter().any(|a| a.ends_with(RESOLVER_A)),
            "{}",
            d.text
        );
    }
    // Blocked names are answered in place, whichever resolver was asked.
    for server in [OUT4, OUT6, GW4] {
        let d = lab.dig(server, "www.ads.test", "A").unwrap();
        assert!(
            d.status == "NXDOMAIN" && d.from_dnssink(),
            "{server}: {}",
            d.text
        );
    }
    // The canaries, answered in the kernel.
    for (name, status) in [
        ("use-application-dns.net", "NXDOMAIN"),
        ("mask.icloud.com", "NXDOMAIN"),
        ("mask-h2.icloud.com", "NXDOMAIN"),
        ("_dns.resolver.arpa", "NOERROR"),
    ] {
        let d = lab.dig(GW4, name, "SVCB").unwrap();
        assert!(
            d.status == status && d.from_dnssink() && d.answers.is_empty(),
            "{name}: {}",
            d.text
        );
    }
    // Without dnssink the outside resolver would have answered: it still does for traffic
    // that does not come from the LAN veth (the gateway itself).
    let out = lab
        .gateway
        .cmd("dig")
        .args([
            &format!("@{OUT4}"),
            "example.test",
            "+short",
            "+tries=1",
            "+time=2",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(OUTSIDE_A));

    // Ports: DoT and DoQ dropped; the --block-ip ports dropped on their family only.
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Vec::new());
    let out_ns = lab.outside.as_ref().unwrap().name.clone();
    std::thread::scope(|s| {
        s.spawn(|| listen(&out_ns, &stop, &seen));
        std::thread::sleep(Duration::from_millis(300));
        assert!(connects(&lab, OUT4, 8443), "an allowed port works");
        assert!(
            connects(&lab, OUT6, 8444),
            "an allowed port works over IPv6"
        );
        assert!(!connects(&lab, OUT4, 853), "DoT is dropped");
        assert!(!connects(&lab, OUT6, 853), "DoT over IPv6 is dropped");
        assert!(!connects(&lab, OUT4, 8444), "the IPv4 rule drops tcp/8444");
        assert!(!connects(&lab, OUT6, 8443), "the IPv6 rule drops tcp/8443");
        send_udp(&lab, OUT4, 853);
        send_udp(&lab, OUT6, 853);
        send_udp(&lab, OUT4, 8445);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    assert_eq!(
        seen,
        [
            "tcp 198.19.0.2:8443".to_string(),
            "tcp [2001:db8:1::2]:8444".to_string(),
            "udp 198.19.0.2:8445".to_string(),
        ]
    );

    // A reload swaps the blocked destinations too.
    std::fs::write(ips.path(), "198.19.0.2 tcp/8443\n").unwrap();
    let out = lab.run_dnssink(&["reload", "lan0"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| listen(&out_ns, &stop, &seen));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!connects(&lab, OUT4, 8443), "now blocked");
        assert!(connects(&lab, OUT4, 8444), "now allowed");
        assert!(connects(&lab, OUT6, 8443), "now allowed over IPv6");
        stop.store(true, Ordering::Relaxed);
    });

    // A reload that fails part way (the new rule table is built, the destinations are too
    // many) changes nothing: the old rules and the old destinations stay, together.
    std::fs::write(block.path(), "||other.test^\n").unwrap();
    let too_many: String = (0..65_537u32)
        .map(|i| format!("10.{}.{}.{} tcp/1\n", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    std::fs::write(ips.path(), too_many).unwrap();
    let out = lab.run_dnssink(&["reload", "lan0"]).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("more than 65536"),
        "{err}"
    );
    let d = lab.dig(GW4, "www.ads.test", "A").unwrap();
    assert!(d.status == "NXDOMAIN" && d.from_dnssink(), "{}", d.text);
    let d = lab.dig(GW4, "other.test", "A").unwrap();
    assert!(
        d.answers.iter().any(|a| a.ends_with(RESOLVER_A)),
        "{}",
        d.text
    );
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| listen(&out_ns, &stop, &seen));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!connects(&lab, OUT4, 8443), "still blocked");
        assert!(connects(&lab, OUT4, 8444), "still allowed");
        stop.store(true, Ordering::Relaxed);
    });
}

//! dnssink as a service, in a netns lab with a live instance: `stats`, `status`, `log`,
//! `top`, the Prometheus endpoint, `detach`, `--on-exit keep` across `kill -9` and a restart,
//! the config file with `run` and `check-config`, and the sd_notify protocol. Every output is
//! checked against the queries sent.

use std::{
    net::UdpSocket,
    os::unix::net::UnixDatagram,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use dnssink_tests::{
    frame::query,
    lab::{self, Dig, GATEWAY_IF, GW4, GW6, Lab, Proc, RESOLVER_A, in_netns},
};
use dnssink_tests::{list, path};
use hickory_proto::{op::ResponseCode, rr::RecordType};
use serde_json::Value;

/// The lab's lists: a domains list (exact) and an adblock list (subtrees).
struct Lists {
    exact: tempfile::NamedTempFile,
    subtree: tempfile::NamedTempFile,
}

fn lists(extra: &str) -> Lists {
    Lists {
        exact: list(&format!("ads.example.test\n{extra}")),
        subtree: list("||tracker.test^\n"),
    }
}

impl Lists {
    fn args(&self) -> Vec<&str> {
        vec![
            "--blocklist",
            path(&self.exact),
            "--blocklist",
            path(&self.subtree),
        ]
    }
}

/// `dnssink ARGS` on the gateway, from another process than the daemon; its stdout.
fn dnssink(lab: &Lab, args: &[&str]) -> String {
    let out = lab.run_dnssink(args).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dnssink {args:?} failed:\n{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn dnssink_fails(lab: &Lab, args: &[&str]) -> String {
    let out = lab.run_dnssink(args).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "dnssink {args:?} should fail");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(json).collect()
}

fn sinkholed(d: &Dig) {
    d.assert_sinkholed();
}

fn resolved(d: &Dig) {
    d.assert_resolved(RESOLVER_A);
}

fn xdp_on_lan(lab: &Lab) -> bool {
    let out = lab::run(lab.gateway.cmd("ip").args(["link", "show", GATEWAY_IF])).unwrap();
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

/// The daemon's pin directory for the lab's LAN interface.
fn pins(lab: &Lab) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let ino = std::fs::metadata(format!("/run/netns/{}", lab.gateway.name))
        .unwrap()
        .ino();
    format!("/sys/fs/bpf/dnssink/{GATEWAY_IF}@{ino}").into()
}

/// Polls `f` until it holds, for up to 5 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stats(lab: &Lab) -> Value {
    json(&dnssink(lab, &["stats", GATEWAY_IF, "--json"]))
}

#[test]
fn stats_status_log_top_metrics_and_detach() {
    let mut lab = Lab::new().unwrap();
    let block = lists("");
    let line = lab
        .start_dnssink(
            &[
                &block.args()[..],
                &["--log-all"],
                &["--metrics", "127.0.0.1:9153"],
            ]
            .concat(),
        )
        .unwrap();
    let program_id: u64 = line
        .split("program id ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    for _ in 0..3 {
        sinkholed(&lab.dig(GW4, "ads.example.test", "A").unwrap());
    }
    for _ in 0..2 {
        sinkholed(&lab.dig(GW6, "www.tracker.test", "AAAA").unwrap());
    }
    for _ in 0..2 {
        let d = lab.dig(GW4, "pass.test", "A").unwrap();
        resolved(&d);
    }

    // stats: the counters, against the 7 queries.
    let s = stats(&lab);
    assert_eq!(s["iface"], GATEWAY_IF);
    assert_eq!(s["answered_exact"], 3, "{s}");
    assert_eq!(s["answered_subtree"], 2, "{s}");
    assert_eq!(s["answered"], 5, "{s}");
    assert_eq!(s["answered_nxdomain"], 5, "{s}");
    assert_eq!(s["answered_address"], 0, "{s}");
    assert_eq!(s["passed"], 2, "{s}");
    assert_eq!(s["dns_queries"], 7, "{s}");
    assert_eq!(s["log_dropped"], 0, "{s}");
    let text = dnssink(&lab, &["stats"]);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["answered_exact", "3"]),
        "{text}"
    );

    // status
    let st = json(&dnssink(&lab, &["status", "--json"]));
    let st = &st.as_array().unwrap()[0];
    assert_eq!(st["iface"], GATEWAY_IF);
    assert_eq!(st["running"], true);
    assert_eq!(st["mode"], "generic");
    assert_eq!(st["program_id"], program_id);
    assert_eq!(st["on_exit"], "detach");
    assert_eq!(st["lists"][0]["path"], path(&block.exact));
    assert_eq!(st["lists"][0]["rules"], 1);
    assert_eq!(st["lists"][1]["format"], "adblock");
    let text = dnssink(&lab, &["status"]);
    assert!(text.contains(&format!("program {program_id}")), "{text}");
    assert!(text.contains(path(&block.subtree)), "{text}");

    // log: every query, in order, with its client, name, type and action. The daemon drains
    // the kernel's buffer every 100 ms.
    eventually("7 queries logged", || {
        dnssink(&lab, &["log", "--json"]).lines().count() == 7
    });
    let log = json_lines(&dnssink(&lab, &["log", "--json"]));
    assert_eq!(log.len(), 7, "{log:?}");
    let row = |e: &Value| {
        format!(
            "{} {} {} {} {}",
            e["client"].as_str().unwrap(),
            e["name"].as_str().unwrap(),
            e["qtype"].as_str().unwrap(),
            e["action"].as_str().unwrap(),
            e["rule"].as_str().unwrap()
        )
    };
    let rows: Vec<String> = log.iter().map(row).collect();
    let mut want = vec!["198.18.0.2 ads.example.test A blocked exact"; 3];
    want.extend(["2001:db8::2 www.tracker.test AAAA blocked subtree"; 2]);
    want.extend(["198.18.0.2 pass.test A passed "; 2]);
    assert_eq!(rows, want);
    assert!(log.iter().all(|e| e["iface"] == GATEWAY_IF));
    let text = dnssink(&lab, &["log"]);
    assert_eq!(text.lines().count(), 7);
    assert!(
        text.lines().next().unwrap().contains("blocked/exact"),
        "{text}"
    );
    let only6 = dnssink(&lab, &["log", "--json", "--client", "2001:db8::/64"]);
    assert_eq!(only6.lines().count(), 2, "{only6}");
    let only = dnssink(&lab, &["log", "--json", "--name", "tracker.TEST"]);
    assert_eq!(only.lines().count(), 2, "{only}");
    let none = dnssink(&lab, &["log", "--json", "--name", "racker.test"]);
    assert_eq!(none.lines().count(), 0, "{none}");

    // top
    let top = json(&dnssink(&lab, &["top", "--json"]));
    assert_eq!(
        top,
        serde_json::json!([{"name": "ads.example.test", "blocked": 3},
                           {"name": "www.tracker.test", "blocked": 2}])
    );
    let top = json(&dnssink(&lab, &["top", "--clients", "-n", "1", "--json"]));
    assert_eq!(
        top,
        serde_json::json!([{"client": "198.18.0.2", "blocked": 3}])
    );
    let text = dnssink(&lab, &["top"]);
    assert!(text.contains("       3  ads.example.test"), "{text}");

    // log --follow sees a new query as it comes.
    let mut follow = Proc::spawn("dnssink log --follow", {
        let mut c = lab.gateway.dnssink().unwrap();
        c.args(["log", "--follow", "--name", "follow.tracker.test"]);
        c
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sinkholed(&lab.dig(GW4, "follow.tracker.test", "TXT").unwrap());
    let line = follow
        .wait_for("follow.tracker.test", Duration::from_secs(5))
        .unwrap();
    assert!(
        line.contains("198.18.0.2") && line.contains("TXT"),
        "{line}"
    );
    drop(follow);

    // metrics, scraped over HTTP.
    let out = lab::run(lab.gateway.cmd("curl").args([
        "-sf",
        "-D",
        "/dev/stderr",
        "http://127.0.0.1:9153/metrics",
    ]))
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let headers = String::from_utf8_lossy(&out.stderr);
    assert!(
        headers.contains("application/openmetrics-text"),
        "{headers}"
    );
    for want in [
        "dnssink_answered_exact_total{iface=\"lan0\"} 3".to_string(),
        "dnssink_answered_subtree_total{iface=\"lan0\"} 3".to_string(),
        "dnssink_passed_total{iface=\"lan0\"} 2".to_string(),
        "dnssink_log_dropped_total{iface=\"lan0\"} 0".to_string(),
        format!(
            "dnssink_rules{{iface=\"lan0\",list=\"{}\",role=\"block\"}} 1",
            path(&block.subtree)
        ),
        "dnssink_last_reload_success{iface=\"lan0\"} 1".to_string(),
        "dnssink_reloads_total{iface=\"lan0\"} 0".to_string(),
        "# EOF".to_string(),
    ] {
        assert!(text.lines().any(|l| l == want), "no {want:?} in:\n{text}");
    }
    // A reload shows in the metrics.
    dnssink(&lab, &["reload", GATEWAY_IF]);
    let out = lab::run(
        lab.gateway
            .cmd("curl")
            .args(["-sf", "http://127.0.0.1:9153/metrics"]),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dnssink_reloads_total{iface=\"lan0\"} 1"),
        "{text}"
    );
    let out = lab
        .gateway
        .cmd("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:9153/",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");

    // detach, from another shell: the daemon ends, and nothing is left.
    let pins = pins(&lab);
    assert!(pins.join("COUNTERS").exists());
    let map_ids: Vec<String> = ["COUNTERS", "TABLES", "EVENTS", "CLIENTS"]
        .iter()
        .map(|m| {
            let out = lab::run(
                std::process::Command::new("bpftool")
                    .args(["map", "show", "pinned"])
                    .arg(pins.join(m)),
            )
            .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split(':')
                .next()
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let out = dnssink(&lab, &["detach", GATEWAY_IF]);
    assert!(out.contains("detached from lan0"), "{out}");
    let daemon = lab.procs.last_mut().unwrap();
    let (status, lines) = daemon.stop().unwrap();
    assert!(status.success(), "{lines:?}");
    assert!(!xdp_on_lan(&lab));
    assert!(!pins.exists());
    let gone = |kind: &str, id: &str| {
        lab::run(std::process::Command::new("bpftool").args([kind, "show", "id", id])).is_err()
    };
    eventually("the program is unloaded", || {
        gone("prog", &program_id.to_string())
    });
    for id in &map_ids {
        eventually(&format!("map {id} is freed"), || gone("map", id));
    }
    let net = lab::run(lab.gateway.cmd("bpftool").args(["net", "show"])).unwrap();
    assert!(
        !String::from_utf8_lossy(&net.stdout).contains("dnssink"),
        "bpftool net still shows it"
    );
    let d = lab.dig(GW4, "ads.example.test", "A").unwrap();
    resolved(&d);
    let err = dnssink_fails(&lab, &["stats", GATEWAY_IF]);
    assert!(err.contains("not attached to lan0"), "{err}");
}

/// A flood larger than the log's buffer: events are dropped and counted, every query is still
/// answered, and the daemon keeps up afterwards. Clients are masked.
#[test]
fn log_overflow_is_counted_and_never_stalls_answers() {
    let mut lab = Lab::new().unwrap();
    let block = lists("");
    lab.start_dnssink(
        &[
            &block.args()[..],
            &["--log-buffer", "4", "--anonymize-clients"],
        ]
        .concat(),
    )
    .unwrap();
    const FLOOD: usize = 5000;
    let received = in_netns(&lab.client.name, || {
        let sock = UdpSocket::bind("198.18.0.2:0")?;
        sock.connect((GW4, 53))?;
        sock.set_read_timeout(Some(Duration::from_millis(500)))?;
        let q = query("ads.example.test.", RecordType::A, true);
        let mut buf = [0u8; 1500];
        let mut received = 0usize;
        for i in 0..FLOOD {
            sock.send(&q)?;
            // Read what has come so far without waiting, so the socket buffer never fills.
            if i % 64 == 0 {
                sock.set_nonblocking(true)?;
                while sock.recv(&mut buf).is_ok() {
                    received += 1;
                }
                sock.set_nonblocking(false)?;
            }
        }
        while sock.recv(&mut buf).is_ok() {
            received += 1;
        }
        Ok(received)
    })
    .unwrap();
    let s = stats(&lab);
    assert_eq!(s["answered_exact"], FLOOD as u64, "{s}");
    let dropped = s["log_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "a 4 KiB buffer holds 14 events: {s}");
    assert!(received > FLOOD * 9 / 10, "{received} answers of {FLOOD}");
    let mut logged = 0;
    eventually("every event read or counted as dropped", || {
        logged = dnssink(&lab, &["log", "--json"]).lines().count();
        logged as u64 + dropped == FLOOD as u64
    });
    println!("flood of {FLOOD}: {logged} logged, {dropped} dropped, {received} answers received");
    // Still answering and logging.
    sinkholed(&lab.dig(GW4, "after.tracker.test", "A").unwrap());
    eventually("the query after the flood is logged", || {
        dnssink(&lab, &["log", "--json", "--name", "after.tracker.test"])
            .lines()
            .count()
            == 1
    });
    let log = json_lines(&dnssink(&lab, &["log", "--json"]));
    assert!(
        log.iter().all(|e| e["client"] == "198.18.0.0"),
        "masked to the /24"
    );
}

#[derive(Default, Debug)]
struct Stream {
    sent: usize,
    lost: usize,
    passed: usize,
}

/// Queries for a blocked name, one at a time, until `stop`.
fn stream(stop: &AtomicBool) -> anyhow::Result<Stream> {
    let mut st = Stream::default();
    lab::query_stream(
        (GW4, 53),
        Duration::from_millis(500),
        stop,
        |n| format!("q{n}.tracker.test."),
        |_, answer| {
            st.sent += 1;
            match answer {
                Some(m) if m.response_code() != ResponseCode::NXDomain => st.passed += 1,
                Some(_) => {}
                None => st.lost += 1,
            }
        },
    )?;
    Ok(st)
}

#[test]
fn keep_survives_kill_9_and_a_restart_adopts_without_a_gap() {
    let mut lab = Lab::new().unwrap();
    let block = lists("");
    lab.start_dnssink(&[&block.args()[..], &["--on-exit", "keep"]].concat())
        .unwrap();
    sinkholed(&lab.dig(GW4, "ads.example.test", "A").unwrap());

    // kill -9 under a stream of queries: none is lost or passed.
    let stop = AtomicBool::new(false);
    let during_kill = std::thread::scope(|s| {
        let client = lab.client.name.clone();
        let stop = &stop;
        let streamer = s.spawn(move || in_netns(&client, || stream(stop)));
        std::thread::sleep(Duration::from_millis(300));
        lab.procs.last_mut().unwrap().kill().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        streamer.join().unwrap()
    })
    .unwrap();
    println!("kill -9 under load: {during_kill:?}");
    assert!(during_kill.sent > 20, "{during_kill:?}");
    assert_eq!(
        (during_kill.lost, during_kill.passed),
        (0, 0),
        "{during_kill:?}"
    );

    // The daemon is gone; the program filters on, over TCP too.
    assert!(xdp_on_lan(&lab));
    sinkholed(&lab.dig(GW4, "ads.example.test", "A").unwrap());
    sinkholed(
        &lab.dig_with(GW4, "ads.example.test", "A", &["+tcp"])
            .unwrap(),
    );
    let st = json(&dnssink(&lab, &["status", "--json"]));
    assert_eq!(st[0]["running"], false, "{st}");
    assert_eq!(st[0]["kept"], true, "{st}");
    assert_eq!(stats(&lab)["answered_exact"], 3);
    assert_eq!(stats(&lab)["answered_tcp"], 1);
    let before_restart = stats(&lab)["answered_subtree"].as_u64().unwrap();
    assert_eq!(before_restart, during_kill.sent as u64);
    // `query` asks the kept program's live table, with no daemon to ask.
    let out = dnssink(&lab, &["query", "ads.example.test", "pass.test"]);
    assert!(
        out.contains("ads.example.test: blocked") && out.contains("pass.test: not blocked"),
        "{out}"
    );

    // A restart with a longer list, under a stream of queries: it takes the kept program
    // over with no query lost or passed, and the counters go on.
    let bigger = lists("new.test\n");
    stop.store(false, Ordering::Relaxed);
    let result = std::thread::scope(|s| {
        let client = lab.client.name.clone();
        let stop = &stop;
        let streamer = s.spawn(move || in_netns(&client, || stream(stop)));
        std::thread::sleep(Duration::from_millis(300));
        let line = lab.start_dnssink(&[&bigger.args()[..], &["--on-exit", "keep"]].concat());
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        (line, streamer.join().unwrap())
    });
    result.0.unwrap();
    let st = result.1.unwrap();
    println!("restart under load: {st:?}");
    assert!(st.sent > 20, "{st:?}");
    assert_eq!((st.lost, st.passed), (0, 0), "{st:?}");
    let seen = &lab.procs.last().unwrap().seen;
    assert!(
        seen.iter()
            .any(|l| l.contains("adopted the program kept on lan0")),
        "{seen:?}"
    );
    sinkholed(&lab.dig(GW4, "new.test", "A").unwrap());
    // The adopted TCP program answers from the new list.
    sinkholed(&lab.dig_with(GW4, "new.test", "A", &["+tcp"]).unwrap());
    // Every query of the stream was answered by the kernel, across both programs.
    let s = stats(&lab);
    assert_eq!(
        s["answered_subtree"],
        before_restart + st.sent as u64,
        "{s}"
    );
    assert_eq!(s["answered_tcp"], 2, "{s}");
    assert_eq!(s["answered_exact"], 5, "{s}");

    // SIGTERM with keep: the program stays; `detach` removes it and the pins.
    let (status, _) = lab.procs.last_mut().unwrap().stop().unwrap();
    assert!(status.success());
    assert!(xdp_on_lan(&lab));
    sinkholed(&lab.dig(GW4, "new.test", "A").unwrap());
    // An instance kept by a dnssink without the TCP program has no TCP link to take over:
    // a restart adopts the XDP link and attaches the TCP program anew.
    std::fs::remove_file(pins(&lab).join("tcp-link")).unwrap();
    lab.start_dnssink(&[&bigger.args()[..], &["--on-exit", "keep"]].concat())
        .unwrap();
    sinkholed(&lab.dig_with(GW4, "new.test", "A", &["+tcp"]).unwrap());
    assert!(pins(&lab).join("tcp-link").exists());
    let (status, _) = lab.procs.last_mut().unwrap().stop().unwrap();
    assert!(status.success());
    dnssink(&lab, &["detach", GATEWAY_IF]);
    assert!(!xdp_on_lan(&lab));
    assert!(!pins(&lab).exists());
    let d = lab.dig(GW4, "ads.example.test", "A").unwrap();
    resolved(&d);
}

/// The TCP programs in tc filters on the LAN interface's ingress (`tc filter show`).
fn tc_filters(lab: &Lab) -> usize {
    let out = lab
        .gateway
        .cmd("tc")
        .args(["filter", "show", "dev", GATEWAY_IF, "ingress"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("dnssink_tcp"))
        .count()
}

/// Without TCX (before 6.6; forced here, as `DNSSINK_COMPAT` loads for an old kernel) the
/// TCP program is a tc filter: it answers over TCP and goes when the daemon stops; with
/// `--on-exit keep` it stays through `kill -9`, the next start puts its program in the same
/// filter, and `detach` removes it.
#[test]
fn without_tcx_the_tcp_program_is_a_tc_filter_kept_adopted_and_detached() {
    let mut lab = Lab::new().unwrap();
    let block = lists("");
    let compat = [("DNSSINK_COMPAT", "1")];
    let line = lab.start_dnssink_env(&block.args(), &compat).unwrap();
    assert_eq!(tc_filters(&lab), 1, "{line}");
    assert!(!pins(&lab).join("tcp-link").exists());
    sinkholed(
        &lab.dig_with(GW4, "ads.example.test", "A", &["+tcp"])
            .unwrap(),
    );
    let (status, _) = lab.procs.last_mut().unwrap().stop().unwrap();
    assert!(status.success());
    assert_eq!(tc_filters(&lab), 0, "the filter goes with the daemon");

    let keep = [&block.args()[..], &["--on-exit", "keep"]].concat();
    lab.start_dnssink_env(&keep, &compat).unwrap();
    lab.procs.last_mut().unwrap().kill().unwrap();
    assert_eq!(tc_filters(&lab), 1);
    sinkholed(
        &lab.dig_with(GW4, "ads.example.test", "A", &["+tcp"])
            .unwrap(),
    );

    let bigger = lists("new.test\n");
    let keep = [&bigger.args()[..], &["--on-exit", "keep"]].concat();
    lab.start_dnssink_env(&keep, &compat).unwrap();
    sinkholed(&lab.dig_with(GW4, "new.test", "A", &["+tcp"]).unwrap());
    assert_eq!(tc_filters(&lab), 1, "the kept filter, its program replaced");
    // Both answers of the kept instance's maps (the first instance's went with it).
    assert_eq!(stats(&lab)["answered_tcp"], 2);
    let (status, _) = lab.procs.last_mut().unwrap().stop().unwrap();
    assert!(status.success());
    assert_eq!(tc_filters(&lab), 1);

    dnssink(&lab, &["detach", GATEWAY_IF]);
    assert_eq!(tc_filters(&lab), 0);
    assert!(!xdp_on_lan(&lab));
    resolved(
        &lab.dig_with(GW4, "ads.example.test", "A", &["+tcp"])
            .unwrap(),
    );
}

#[test]
fn detach_mode_removes_the_program_even_after_kill_9() {
    let mut lab = Lab::new().unwrap();
    let block = lists("");
    lab.start_dnssink(&block.args()).unwrap();
    sinkholed(&lab.dig(GW4, "ads.example.test", "A").unwrap());
    lab.procs.last_mut().unwrap().kill().unwrap();
    eventually("the program is detached", || !xdp_on_lan(&lab));
    let d = lab.dig(GW4, "ads.example.test", "A").unwrap();
    resolved(&d);
    // The next start clears what the dead daemon left, and attaches afresh.
    lab.start_dnssink(&block.args()).unwrap();
    sinkholed(&lab.dig(GW4, "ads.example.test", "A").unwrap());
    assert_eq!(stats(&lab)["answered_exact"], 1);
}

#[test]
fn config_file_run_check_config_and_sd_notify() {
    let mut lab = Lab::new().unwrap();
    let block = lists("");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dnssink.toml");
    let write = |text: &str| std::fs::write(&config, text).unwrap();
    let cfg = config.to_str().unwrap();

    // Errors name the key, or the list's file and line.
    write(&format!(
        "blocklist = [\"{}\"]\n[[interface]]\nname = \"lan0\"\nttll = 5\n",
        path(&block.exact)
    ));
    let err = dnssink_fails(&lab, &["check-config", "--config", cfg]);
    assert!(
        err.contains(cfg) && err.contains("unknown key `ttll`"),
        "{err}"
    );
    write("[[interface]]\nname = \"lan0\"\nresponse = \"nxdomian\"\n");
    let err = dnssink_fails(&lab, &["check-config", "--config", cfg]);
    assert!(err.contains("key `response`"), "{err}");
    let bad = list("ads.test\nnot a domain line\n");
    write(&format!(
        "strict = true\n[[interface]]\nname = \"lan0\"\nblocklist = [\"{}\"]\n",
        path(&bad)
    ));
    let err = dnssink_fails(&lab, &["check-config", "--config", cfg]);
    assert!(err.contains(&format!("{}:2", path(&bad))), "{err}");
    let err = dnssink_fails(&lab, &["run", "--config", cfg]);
    assert!(err.contains(&format!("{}:2", path(&bad))), "{err}");
    assert!(!xdp_on_lan(&lab), "a bad config attaches nothing");

    write(&format!(
        "metrics = \"127.0.0.1:9154\"\nblocklist = [\"{}\", \"{}\"]\nresponse = \"null\"\n\n\
         [[interface]]\nname = \"lan0\"\nttl = 42\nlog-all = true\n",
        path(&block.exact),
        path(&block.subtree)
    ));
    let out = dnssink(&lab, &["check-config", "--config", cfg]);
    assert!(out.contains("lan0: 2 rules from 2 lists"), "{out}");
    assert!(out.ends_with(&format!("{cfg}: ok\n")), "{out}");

    // run, under a stand-in for systemd's notify socket.
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut cmd = lab.gateway.dnssink().unwrap();
    cmd.args(["run", "--config", cfg])
        .env("NOTIFY_SOCKET", &notify_path);
    let mut p = Proc::spawn("dnssink run", cmd).unwrap();
    p.wait_for("dnssink: attached to lan0", Duration::from_secs(60))
        .unwrap();
    let mut buf = [0u8; 512];
    let mut next = || {
        let n = notify.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = next();
    assert!(
        ready.contains("READY=1") && ready.contains("STATUS=filtering on lan0"),
        "{ready}"
    );
    lab.procs.push(p);
    let d = lab.dig(GW4, "ads.example.test", "A").unwrap();
    assert_eq!(d.status, "NOERROR", "{}", d.text);
    let mx = lab.dig(GW4, "www.tracker.test", "MX").unwrap();
    assert!(
        mx.answers.is_empty() && mx.status == "NOERROR",
        "{}",
        mx.text
    );
    let s = stats(&lab);
    assert_eq!(
        (
            s["answered_address"].as_u64(),
            s["answered_nodata"].as_u64()
        ),
        (Some(1), Some(1)),
        "{s}"
    );
    assert!(
        d.answers.iter().any(|a| a.contains("42\tIN\tA\t0.0.0.0")),
        "{}",
        d.text
    );
    // The instance's arguments came from the file: `reload` and `query` use them.
    let out = dnssink(&lab, &["reload", GATEWAY_IF]);
    assert!(out.contains("reloaded lan0"), "{out}");
    let reloading = next();
    assert!(
        reloading.contains("RELOADING=1") && reloading.contains("MONOTONIC_USEC="),
        "{reloading}"
    );
    assert!(next().contains("READY=1"));
    let out = dnssink(&lab, &["query", "www.tracker.test"]);
    assert!(out.contains("blocked"), "{out}");
    let out = lab::run(
        lab.gateway
            .cmd("curl")
            .args(["-sf", "http://127.0.0.1:9154/metrics"]),
    )
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("dnssink_answered_exact_total{iface=\"lan0\"} 1")
    );
    let (status, _) = lab.procs.last_mut().unwrap().stop().unwrap();
    assert!(status.success());
    assert!(next().contains("STOPPING=1"));
    assert!(!xdp_on_lan(&lab));
}

/// The systemd unit parses cleanly (`systemd-analyze verify`, pointed at this build), and is
/// what the daemon implements: Type=notify, reload by SIGHUP, the capabilities it checks for.
#[test]
fn systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dist/dnssink.service"
    ))
    .unwrap();
    for want in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON",
        "ProtectSystem=strict",
        "ReadWritePaths=/sys/fs/bpf",
    ] {
        assert!(unit.lines().any(|l| l == want), "no {want:?} in the unit");
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = lab::dnssink_bin().unwrap();
    let local = dir.path().join("dnssink.service");
    std::fs::write(
        &local,
        unit.replace("/usr/bin/dnssink", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&local)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    // And it catches a broken unit.
    std::fs::write(&local, unit.replace("Type=notify", "Type=notifyy")).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("notifyy"));
}

/// The program stays on an interface that goes down and up again.
#[test]
fn interface_down_and_up_keeps_the_program() {
    let mut lab = Lab::new().unwrap();
    let block = lists("");
    lab.start_dnssink(&block.args()).unwrap();
    sinkholed(&lab.dig(GW4, "ads.example.test", "A").unwrap());
    lab.gateway.sh("ip link set lan0 down").unwrap();
    assert!(xdp_on_lan(&lab));
    lab.gateway.sh("ip link set lan0 up").unwrap();
    eventually("the link is up and answering", || {
        lab.dig(GW4, "ads.example.test", "A")
            .is_ok_and(|d| d.from_dnssink())
    });
    // (Down drops the IPv6 addresses, so IPv4 only.)
    sinkholed(&lab.dig(GW4, "www.tracker.test", "AAAA").unwrap());
    assert!(xdp_on_lan(&lab));
    assert_eq!(stats(&lab)["answered_subtree"], 1);
}

//! `cargo xtask bench`: the rules engine measured beside dnsmasq on the same lists, in one
//! run.
//!
//! For each list (synthetic ones of 100k, 1M and 5M names, generated deterministically, and
//! the real shared lists) it starts dnssink and dnsmasq in turn and measures:
//! - the load time: from the start of the process until it reports the list loaded
//! - the userspace RSS after the load (for dnsmasq, its growth over an empty list)
//! - for dnssink, the kernel memory of the rule table (the map's memlock), per rule
//!
//! It writes `target/bench/report.md` and `target/bench/report.json`.

use std::{
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use dnssink_tests::lab::{Netns, Proc, dnssink_bin, live_table, map_show, run};

struct Row {
    peer: &'static str,
    scenario: String,
    rules: usize,
    load_s: f64,
    mem_bytes: u64,
    kernel_bytes: Option<u64>,
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out)?;
    let mut lists: Vec<(String, PathBuf, usize)> = Vec::new();
    let sizes: &[usize] = if quick {
        &[100_000, 1_000_000]
    } else {
        &[100_000, 1_000_000, 5_000_000]
    };
    for &n in sizes {
        let path = out.join(format!("synthetic-{n}.hosts"));
        synthetic(&path, n)?;
        lists.push((format!("synthetic {}", human(n)), path, n));
    }
    for name in ["stevenblack.domains.txt", "adguarddns.hosts.txt"] {
        let path = dnssink_tests::shared_list(name);
        if path.exists() {
            let n = count_names(&path)?;
            lists.push((name.to_string(), path, n));
        }
    }
    let baseline = dnsmasq(None)?.1;
    let mut rows = Vec::new();
    for (scenario, path, n) in &lists {
        println!("== {scenario}: {n} names");
        let (load, rss, kernel) = dnssink(path)?;
        println!(
            "   dnssink: loaded in {load:.2}s, RSS {} MB, kernel table {} MB ({:.1} B/rule)",
            mb(rss),
            mb(kernel),
            kernel as f64 / *n as f64
        );
        rows.push(Row {
            peer: "dnssink",
            scenario: scenario.clone(),
            rules: *n,
            load_s: load,
            mem_bytes: rss,
            kernel_bytes: Some(kernel),
        });
        let conf = dnsmasq_conf(path, &out)?;
        let (load, rss) = dnsmasq(Some(&conf))?;
        let _ = std::fs::remove_file(&conf);
        let growth = rss.saturating_sub(baseline);
        println!("   dnsmasq: loaded in {load:.2}s, RSS +{} MB", mb(growth));
        rows.push(Row {
            peer: "dnsmasq",
            scenario: scenario.clone(),
            rules: *n,
            load_s: load,
            mem_bytes: growth,
            kernel_bytes: None,
        });
    }
    let (md, json) = report(&rows);
    std::fs::write(out.join("report.md"), &md)?;
    std::fs::write(out.join("report.json"), &json)?;
    println!("\n{md}\nwritten: {}", out.join("report.md").display());
    Ok(())
}

fn human(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / 1e6)
}

/// `n` distinct names, the same on every run: one to three labels of 4 to 14 letters and
/// digits under one of a few top-level domains, in hosts format.
fn synthetic(path: &Path, n: usize) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tlds = ["com", "net", "org", "io", "ru", "de", "info", "xyz"];
    let alpha = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        let mut name = String::from("0.0.0.0 ");
        for _ in 0..1 + next() % 3 {
            for _ in 0..4 + next() % 11 {
                name.push(alpha[(next() % 36) as usize] as char);
            }
            name.push('.');
        }
        // The index keeps every name distinct.
        write!(name, "n{i:x}.{}", tlds[(next() % 8) as usize])?;
        writeln!(f, "{name}")?;
    }
    Ok(())
}

fn count_names(path: &Path) -> Result<usize> {
    let spec = dnssink::ListSpec {
        path: path.into(),
        opts: dnssink::lists::Options::block(),
    };
    Ok(dnssink::load_lists(&[spec], false, false)?.rules.len())
}

fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmRSS")?
        .parse()?;
    Ok(kb * 1024)
}

/// dnssink on a veth in its own namespace: load time, RSS, and the table's kernel memory.
fn dnssink(list: &Path) -> Result<(f64, u64, u64)> {
    let ns = Netns::new("bench")?;
    run(Command::new("ip").args([
        "-n", &ns.name, "link", "add", "b0", "type", "veth", "peer", "name", "b1",
    ]))?;
    ns.sh("ip link set b0 up\nip link set b1 up")?;
    let mut cmd = ns.cmd(dnssink_bin()?);
    cmd.args(["attach", "b0", "--mode", "generic", "--blocklist"])
        .arg(list);
    let t = Instant::now();
    let mut p = Proc::spawn("dnssink", cmd)?;
    let line = p.wait_for("dnssink: attached", Duration::from_secs(600))?;
    let load = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let rss = rss(p.child.id())?;
    let prog = line
        .split("program id ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .context("no program id")?;
    let kernel = table_memlock(prog)?;
    p.stop()?;
    Ok((load, rss, kernel))
}

/// The memlock of the rule table behind program `prog`.
fn table_memlock(prog: &str) -> Result<u64> {
    let id = live_table(prog)?;
    let m = map_show(id).context("the rule table's map is gone")?;
    let memlock = m
        .split("memlock ")
        .nth(1)
        .and_then(|s| s.split('B').next())
        .context("no memlock")?;
    Ok(memlock.trim().parse()?)
}

/// The same names as a dnsmasq config: `address=/name/0.0.0.0` a line, the form in which
/// dnsmasq loads large lists fastest (`--addn-hosts` takes ten times longer at 1M names).
fn dnsmasq_conf(list: &Path, out: &Path) -> Result<PathBuf> {
    let name = list.file_name().context("no file name")?.to_string_lossy();
    let conf = out.join(format!("{name}.dnsmasq.conf"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&conf)?);
    let mut err = Ok(());
    dnssink::lists::load(list, &dnssink::lists::Options::block(), &mut |r| {
        if err.is_ok() {
            err = writeln!(f, "address=/{}/0.0.0.0", r.name);
        }
    })?;
    err?;
    f.flush()?;
    Ok(conf)
}

/// dnsmasq with `conf` on loopback in its own namespace: the time until it has read the
/// whole config (it logs "started" after that), and its RSS.
fn dnsmasq(conf: Option<&Path>) -> Result<(f64, u64)> {
    let ns = Netns::new("bench")?;
    let mut cmd = ns.cmd("dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--user=root",
        "--pid-file=",
        "--log-facility=-",
        "--cache-size=0",
    ]);
    cmd.arg(format!(
        "--conf-file={}",
        conf.map_or("/dev/null".into(), |c| c.display().to_string())
    ));
    let t = Instant::now();
    let mut p = Proc::spawn("dnsmasq", cmd)?;
    p.wait_for("started, version", Duration::from_secs(600))?;
    let load = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let rss = rss(p.child.id())?;
    p.stop()?;
    Ok((load, rss))
}

fn report(rows: &[Row]) -> (String, String) {
    let mut md = String::from(
        "| peer | scenario | rules | load (s) | userspace memory (MB) | kernel table (MB) | kernel B/rule |\n|---|---|---|---|---|---|---|\n",
    );
    let mut objects = Vec::new();
    for r in rows {
        let k = r.kernel_bytes.map_or(String::new(), mb);
        let per = r.kernel_bytes.map_or(String::new(), |k| {
            format!("{:.1}", k as f64 / r.rules as f64)
        });
        let mem = if r.peer == "dnsmasq" {
            format!("+{}", mb(r.mem_bytes))
        } else {
            mb(r.mem_bytes)
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} | {} | {} | {} |",
            r.peer, r.scenario, r.rules, r.load_s, mem, k, per
        );
        // mem_bytes: everything the peer holds for its rules (userspace growth + kernel).
        objects.push(format!(
            "  {{\"peer\": \"{}\", \"scenario\": \"{}\", \"rules\": {}, \"qps\": null, \"loss\": null, \"lat_avg_us\": null, \"lat_p99_us\": null, \"mem_bytes\": {}, \"load_s\": {:.3}, \"ns_per_pkt\": null, \"userspace_bytes\": {}, \"kernel_bytes\": {}}}",
            r.peer,
            r.scenario,
            r.rules,
            r.mem_bytes + r.kernel_bytes.unwrap_or(0),
            r.load_s,
            r.mem_bytes,
            r.kernel_bytes.map_or("null".into(), |k| k.to_string()),
        ));
    }
    (md, format!("[\n{}\n]\n", objects.join(",\n")))
}

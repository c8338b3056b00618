//! `cargo xtask bench`: dnssink beside its peers, on one lab, one list and one load generator,
//! in one run.
//!
//! The lab is a client and a gateway namespace joined by veth. On the gateway, one after the
//! other:
//! - `reflector`: the trivial XDP program that sends every UDP frame back (bench only): the
//!   ceiling of the load generator and of XDP
//! - `dnssink`, attached in native mode (an XDP pass program on the client's veth lets its
//!   XDP_TX frames through), with dnsmasq behind it as the resolver for the names it passes
//! - `unbound`, with `local-zone: "name." always_nxdomain` for every name, one thread
//! - `dnsmasq`, with `address=/name/` for every name
//!
//! For each list (synthetic ones of 100k, 1M and 5M names, generated deterministically, and a
//! real shared list; `--quick`: 1M and 5M) it measures:
//! - the load time, and the memory the peer holds for the list
//! - the qps answered at saturation, and the loss, with kxdpgun (AF_XDP)
//! - the latency (min, average, p99) at a fixed offered rate, with dnsperf
//! - for dnssink and the reflector, the average ns per packet from `kernel.bpf_stats_enabled`,
//!   for blocked answers, allowed queries, the mix (80% allowed names not listed, 20%
//!   blocked) and frames that are not DNS, and from `BPF_PROG_TEST_RUN`
//! - CPU per answered query for every peer: bpf_stats for the XDP ones; for unbound and
//!   dnsmasq, their process CPU time over the capacity run divided by the answers
//! - at the first size, the stage breakdown of one query (`dnssink_tests::stages`)
//!
//! It writes `target/bench/report.md`, `report.json` and `report.svg`.

use std::{
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use aya::programs::{TestRun as _, TestRunOptions, Xdp, XdpMode};
use dnssink_tests::{
    frame,
    lab::{LAB_PROGRAMS, Netns, Proc, live_table, map_show, run, veth},
};

/// The client and the gateway.
const CLIENT: &str = "198.18.0.2";
const GATEWAY: &str = "198.18.0.1";

/// One peer's figures for one list.
#[derive(Default)]
struct Row {
    peer: &'static str,
    scenario: String,
    rules: usize,
    load_s: Option<f64>,
    /// Memory held for the list: userspace growth plus kernel memory.
    mem_bytes: Option<u64>,
    kernel_bytes: Option<u64>,
    qps: Option<f64>,
    loss: Option<f64>,
    lat_min_us: Option<f64>,
    lat_avg_us: Option<f64>,
    lat_p99_us: Option<f64>,
    /// bpf_stats: blocked answers, allowed queries, other frames.
    ns_per_pkt: Option<f64>,
    ns_allowed: Option<f64>,
    ns_other: Option<f64>,
    /// BPF_PROG_TEST_RUN with repeat, for a blocked answer.
    ns_test_run: Option<f64>,
    /// bpf_stats over the realistic mix: 80% allowed names that are not listed, 20% blocked.
    ns_mix: Option<f64>,
    /// CPU per answered query: bpf_stats for the XDP peers; for the resolvers, their process
    /// CPU time over the capacity run, divided by the answers.
    cpu_ns: Option<f64>,
    /// dnssink's memory cgroup ([`MemCg`]): its peak while attaching, its peak while
    /// reloading the same list, and what it holds once loaded.
    cg_attach: Option<u64>,
    cg_reload: Option<u64>,
    cg_after: Option<u64>,
}

/// A memory cgroup of the bench's own, which dnssink runs in from its first instruction: its
/// peak counts the process and the BPF maps it creates together (the kernel charges a map to
/// its creator's cgroup), which is what a router must have free. cgroup v1's memory
/// controller (`memory.max_usage_in_bytes`, which can be reset for the reload), or v2's
/// `memory.peak`.
struct MemCg {
    dir: PathBuf,
    v2: bool,
}

impl MemCg {
    fn new() -> Result<Option<MemCg>> {
        let name = format!("dnssink-bench-{}", std::process::id());
        let (base, v2) = if Path::new("/sys/fs/cgroup/memory/memory.usage_in_bytes").exists() {
            (PathBuf::from("/sys/fs/cgroup/memory"), false)
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            (PathBuf::from("/sys/fs/cgroup"), true)
        } else {
            return Ok(None);
        };
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Some(MemCg { dir, v2 }))
    }

    fn read(&self, v1: &str, v2: &str) -> Result<u64> {
        let f = self.dir.join(if self.v2 { v2 } else { v1 });
        Ok(std::fs::read_to_string(&f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim()
            .parse()?)
    }

    fn peak(&self) -> Result<u64> {
        self.read("memory.max_usage_in_bytes", "memory.peak")
    }

    fn usage(&self) -> Result<u64> {
        self.read("memory.usage_in_bytes", "memory.current")
    }

    /// Starts the peak again from now; false where it cannot be (v2's is per reader).
    fn reset_peak(&self) -> bool {
        !self.v2 && std::fs::write(self.dir.join("memory.max_usage_in_bytes"), "0").is_ok()
    }

    /// `cmd`, run inside this cgroup from its start: a shell puts itself in and execs it.
    fn wrap(&self, cmd: &Command) -> Command {
        let mut w = Command::new("sh");
        w.arg("-c")
            .arg(format!(
                "echo $$ > '{}' && exec \"$@\"",
                self.dir.join("cgroup.procs").display()
            ))
            .arg("sh")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        w
    }
}

impl Drop for MemCg {
    fn drop(&mut self) {
        // Empty once its processes have ended.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

struct Settings {
    /// Seconds of each load-generator run.
    secs: u64,
    /// The rate kxdpgun offers, well above what any peer answers.
    flood_qps: u64,
    /// The rate of the latency runs: one every peer answers in full.
    latency_qps: u64,
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out)?;
    let set = Settings {
        secs: if quick { 3 } else { 5 },
        flood_qps: 2_000_000,
        latency_qps: 20_000,
    };
    let mut lists: Vec<(String, PathBuf)> = Vec::new();
    let sizes: &[usize] = if quick {
        &[1_000_000, 5_000_000]
    } else {
        &[100_000, 1_000_000, 5_000_000]
    };
    for &n in sizes {
        let path = out.join(format!("synthetic-{n}.hosts"));
        synthetic(&path, n)?;
        lists.push((format!("synthetic {}", human(n)), path));
    }
    if !quick {
        let real = dnssink_tests::shared_list("stevenblack.domains.txt");
        if real.exists() {
            lists.push(("stevenblack.domains.txt".into(), real));
        }
    }
    let _stats = BpfStats::enable()?;
    let mut rows = Vec::new();
    let mut stages = String::new();
    for (scenario, path) in &lists {
        println!("== {scenario}");
        let names = list_names(path)?;
        let queries = out.join("queries-blocked.txt");
        let pass = out.join("queries-pass.txt");
        write_queries(
            &queries,
            names.iter().step_by((names.len() / 100_000).max(1)),
        )?;
        let pass_names: Vec<String> = (0..100_000).map(|i| format!("pass{i}.example")).collect();
        write_queries(&pass, pass_names.iter())?;
        // The mix: one blocked name in five.
        let mix = out.join("queries-mix.txt");
        let blocked_names: Vec<&String> = names
            .iter()
            .step_by((names.len() / 20_000).max(1))
            .take(20_000)
            .collect();
        write_queries(
            &mix,
            (0..100_000).map(|i| {
                if i % 5 == 0 {
                    blocked_names[(i / 5) % blocked_names.len()]
                } else {
                    &pass_names[i]
                }
            }),
        )?;
        let lab = BenchLab::new()?;
        for peer in ["reflector", "dnssink", "unbound", "dnsmasq"] {
            let mut row = Row {
                peer,
                scenario: scenario.clone(),
                rules: names.len(),
                ..Row::default()
            };
            if let Err(e) = lab.measure(
                &mut row,
                path,
                &names,
                &Queries {
                    blocked: &queries,
                    pass: &pass,
                    mix: &mix,
                },
                &set,
            ) {
                println!("   {peer}: failed: {e:#}");
            }
            println!("   {}", row.line());
            rows.push(row);
        }
        // Where the time of one query goes, at the first size (1M rules with --quick).
        if stages.is_empty() {
            match dnssink_tests::stages::measure(&names) {
                Ok(s) => stages = s.markdown(names.len()),
                Err(e) => println!("   stages: failed: {e:#}"),
            }
        }
    }
    let (mut md, json) = report(&rows);
    md.push('\n');
    md.push_str(&stages);
    std::fs::write(out.join("report.md"), &md)?;
    std::fs::write(out.join("report.json"), &json)?;
    if let Err(e) = chart(&rows, &out.join("report.svg")) {
        println!("no chart: {e:#}");
    }
    println!("\n{md}\nwritten: {}", out.join("report.md").display());
    Ok(())
}

impl Row {
    fn line(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
        format!(
            "{}: load {}s, mem {} MB (cgroup peak attach {} / reload {} MB), {} qps (loss {}%), latency avg {} us p99 {} us, {} ns/pkt",
            self.peer,
            f(self.load_s, 2),
            f(self.mem_bytes.map(|b| b as f64 / 1e6), 1),
            f(self.cg_attach.map(|b| b as f64 / 1e6), 1),
            f(self.cg_reload.map(|b| b as f64 / 1e6), 1),
            f(self.qps, 0),
            f(self.loss.map(|l| l * 100.0), 1),
            f(self.lat_avg_us, 1),
            f(self.lat_p99_us, 1),
            f(self.ns_per_pkt, 0),
        )
    }
}

fn human(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
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

/// The names of a list, as dnssink reads it.
fn list_names(path: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    dnssink::lists::load(path, &dnssink::lists::Options::block(), &mut |r| {
        names.push(r.name.to_string())
    })?;
    Ok(names)
}

fn write_queries<'a>(path: &Path, names: impl Iterator<Item = &'a String>) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for n in names {
        writeln!(f, "{n} A")?;
    }
    Ok(f.flush()?)
}

/// The CPU time (user and system) process `pid` has used, in ns.
fn cpu_ns(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (in parentheses): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(") ").context("a /proc stat line")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks * 1e9 / hz)
}

/// `cpu` ns spent over a capacity run, per answer it gave.
fn per_answer(cpu: f64, row: &Row, set: &Settings) -> Option<f64> {
    let answers = row.qps? * set.secs as f64;
    (answers > 0.0).then(|| cpu / answers)
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

/// `kernel.bpf_stats_enabled` on while the bench runs, and back as it was after.
struct BpfStats(String);

impl BpfStats {
    fn enable() -> Result<BpfStats> {
        let was = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")?;
        std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1")?;
        Ok(BpfStats(was.trim().to_string()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", &self.0);
    }
}

/// (run_time_ns, run_cnt) of a program, from bpftool.
fn prog_stats(id: u32) -> Result<(u64, u64)> {
    let out = run(Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> Result<u64> {
        Ok(text
            .split(&format!("{k} "))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .with_context(|| format!("no {k} for program {id}"))?
            .parse()?)
    };
    Ok((field("run_time_ns")?, field("run_cnt")?))
}

/// The lab: a client and a gateway joined by veth.
/// The query files of a scenario: blocked names, allowed ones, and the mix of both.
#[derive(Clone, Copy)]
struct Queries<'a> {
    blocked: &'a Path,
    pass: &'a Path,
    mix: &'a Path,
}

struct BenchLab {
    client: Netns,
    gateway: Netns,
}

impl BenchLab {
    fn new() -> Result<BenchLab> {
        let client = Netns::new("bclient")?;
        let gateway = Netns::new("bgw")?;
        veth(&client, "lan0", &gateway, "lan0")?;
        for (ns, addr) in [(&client, CLIENT), (&gateway, GATEWAY)] {
            ns.sh(&format!(
                "ip link set lan0 up\nip addr add {addr}/24 dev lan0"
            ))?;
        }
        Ok(BenchLab { client, gateway })
    }

    fn measure(
        &self,
        row: &mut Row,
        list: &Path,
        names: &[String],
        q: &Queries,
        set: &Settings,
    ) -> Result<()> {
        let Queries { blocked, pass, mix } = *q;
        match row.peer {
            "reflector" => {
                let mut ebpf = aya::Ebpf::load(LAB_PROGRAMS)?;
                let id = dnssink_tests::lab::in_netns(&self.gateway.name, || {
                    let p: &mut Xdp = ebpf
                        .program_mut("reflector")
                        .context("no reflector")?
                        .try_into()?;
                    p.load()?;
                    p.attach("lan0", XdpMode::Driver)?;
                    Ok(p.info()?.id())
                })?;
                self.capacity(row, blocked, set)?;
                // No latency: dnsperf takes a reflected query for no answer.
                row.ns_per_pkt = Some(self.ns_per_pkt(id, blocked, None, set)?);
                row.cpu_ns = row.ns_per_pkt;
                drop(ebpf);
            }
            "dnssink" => {
                // The resolver behind dnssink, for the names it passes.
                let _resolver = self.dnsmasq(None, &["--address=/#/198.18.100.9"])?;
                let mut cmd = self.gateway.dnssink()?;
                cmd.args(["attach", "lan0", "--mode", "native", "--blocklist"])
                    .arg(list);
                // The list in the page cache first, charged to the bench, not to dnssink.
                std::fs::read(list)?;
                let cg = MemCg::new()?;
                let cmd = match &cg {
                    Some(cg) => cg.wrap(&cmd),
                    None => cmd,
                };
                let t = Instant::now();
                let mut p = Proc::spawn("dnssink", cmd)?;
                let line = p.wait_for("dnssink: attached", Duration::from_secs(600))?;
                row.load_s = Some(t.elapsed().as_secs_f64());
                if let Some(cg) = &cg {
                    row.cg_attach = Some(cg.peak()?);
                    std::thread::sleep(Duration::from_millis(300));
                    row.cg_after = Some(cg.usage()?);
                }
                std::thread::sleep(Duration::from_millis(300));
                let prog = line
                    .split("program id ")
                    .nth(1)
                    .and_then(|s| s.split(')').next())
                    .context("no program id")?
                    .to_string();
                let table = live_table(&prog)?;
                let memlock: u64 = map_show(table)
                    .context("no table map")?
                    .split("memlock ")
                    .nth(1)
                    .and_then(|s| s.split('B').next())
                    .context("no memlock")?
                    .trim()
                    .parse()?;
                row.kernel_bytes = Some(memlock);
                row.mem_bytes = Some(rss(p.child.id())? + memlock);
                self.capacity(row, blocked, set)?;
                let pass_prog = self.client_pass()?;
                self.latency(row, blocked, set)?;
                drop(pass_prog);
                let id: u32 = prog.parse()?;
                row.ns_per_pkt = Some(self.ns_per_pkt(id, blocked, None, set)?);
                row.ns_allowed = Some(self.ns_per_pkt(id, pass, None, set)?);
                row.ns_mix = Some(self.ns_per_pkt(id, mix, None, set)?);
                row.cpu_ns = row.ns_per_pkt;
                row.ns_other = Some(self.ns_per_pkt(id, blocked, Some(5353), set)?);
                // A reload of the same list: the next table is built beside the live one.
                if let Some(cg) = cg.as_ref().filter(|cg| cg.reset_peak()) {
                    let mut r = self.gateway.dnssink()?;
                    let out = r.args(["reload", "lan0"]).output()?;
                    ensure!(
                        out.status.success(),
                        "dnssink reload: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    row.cg_reload = Some(cg.peak()?);
                }
                p.stop()?;
                row.ns_test_run = Some(test_run_ns(names)?);
            }
            "unbound" => {
                let dir = tempfile::tempdir()?;
                let conf = dir.path().join("unbound.conf");
                let mut f = std::io::BufWriter::new(std::fs::File::create(&conf)?);
                writeln!(
                    f,
                    "server:\n  interface: {GATEWAY}\n  port: 53\n  do-ip6: no\n  num-threads: 1\n  access-control: 198.18.0.0/15 allow\n  username: \"\"\n  chroot: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  do-daemonize: no\n  module-config: \"iterator\"\n  so-rcvbuf: 4m\n  so-sndbuf: 4m",
                    dir.path().display()
                )?;
                for n in names {
                    writeln!(f, "  local-zone: \"{n}.\" always_nxdomain")?;
                }
                writeln!(
                    f,
                    "forward-zone:\n  name: \".\"\n  forward-addr: 127.0.0.1@5353"
                )?;
                f.flush()?;
                let empty = dir.path().join("empty.conf");
                std::fs::write(
                    &empty,
                    std::fs::read_to_string(&conf)?
                        .lines()
                        .filter(|l| !l.contains("local-zone"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )?;
                let base = self.unbound(&empty)?.1;
                let (mut p, rss_now, load) = self.unbound(&conf)?;
                row.load_s = Some(load);
                row.mem_bytes = Some(rss_now.saturating_sub(base));
                let cpu = cpu_ns(p.child.id())?;
                self.capacity(row, blocked, set)?;
                row.cpu_ns = per_answer(cpu_ns(p.child.id())? - cpu, row, set);
                let _pass = self.client_pass()?;
                self.latency(row, blocked, set)?;
                p.stop()?;
            }
            "dnsmasq" => {
                let dir = tempfile::tempdir()?;
                let conf = dir.path().join("dnsmasq.conf");
                let mut f = std::io::BufWriter::new(std::fs::File::create(&conf)?);
                for n in names {
                    writeln!(f, "address=/{n}/")?;
                }
                f.flush()?;
                let base = {
                    let mut p = self.dnsmasq(None, &[])?;
                    std::thread::sleep(Duration::from_millis(200));
                    let r = rss(p.child.id())?;
                    p.stop()?;
                    r
                };
                let t = Instant::now();
                let mut p = self.dnsmasq(Some(&conf), &[])?;
                row.load_s = Some(t.elapsed().as_secs_f64());
                std::thread::sleep(Duration::from_millis(300));
                row.mem_bytes = Some(rss(p.child.id())?.saturating_sub(base));
                let cpu = cpu_ns(p.child.id())?;
                self.capacity(row, blocked, set)?;
                row.cpu_ns = per_answer(cpu_ns(p.child.id())? - cpu, row, set);
                let _pass = self.client_pass()?;
                self.latency(row, blocked, set)?;
                p.stop()?;
            }
            other => bail!("no peer {other}"),
        }
        Ok(())
    }

    /// dnsmasq on the gateway address, with `conf` (its load is done once it says
    /// "started"), forwarding what it does not know to a stub on 127.0.0.1:5353.
    fn dnsmasq(&self, conf: Option<&Path>, extra: &[&str]) -> Result<Proc> {
        let mut cmd = self.gateway.cmd("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            "--log-facility=-",
            "--server=127.0.0.1#5353",
        ]);
        cmd.arg(format!("--listen-address={GATEWAY}"));
        cmd.arg(format!(
            "--conf-file={}",
            conf.map_or("/dev/null".into(), |c| c.display().to_string())
        ));
        cmd.args(extra);
        let mut p = Proc::spawn("dnsmasq", cmd)?;
        p.wait_for("started, version", Duration::from_secs(600))?;
        Ok(p)
    }

    /// unbound with `conf`: the process, its RSS once serving, and the load time.
    fn unbound(&self, conf: &Path) -> Result<(Proc, u64, f64)> {
        let mut cmd = self.gateway.cmd("unbound");
        cmd.args(["-d", "-c"]).arg(conf);
        let t = Instant::now();
        let mut p = Proc::spawn("unbound", cmd)?;
        p.wait_for("start of service", Duration::from_secs(600))?;
        let load = t.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(300));
        let r = rss(p.child.id())?;
        Ok((p, r, load))
    }

    /// An XDP pass program on the client's veth, while sockets are used: a veth drops XDP_TX
    /// frames from its peer when it has no XDP program itself. (kxdpgun brings its own.)
    fn client_pass(&self) -> Result<aya::Ebpf> {
        // kxdpgun leaves its own program behind.
        self.client.sh("ip link set dev lan0 xdp off")?;
        let mut ebpf = aya::Ebpf::load(LAB_PROGRAMS)?;
        dnssink_tests::lab::in_netns(&self.client.name, || {
            let p: &mut Xdp = ebpf
                .program_mut("xdp_pass")
                .context("no xdp_pass")?
                .try_into()?;
            p.load()?;
            p.attach("lan0", XdpMode::Driver)?;
            Ok(())
        })?;
        Ok(ebpf)
    }

    /// kxdpgun at `flood_qps` for `secs`: the replies per second, and the loss.
    fn kxdpgun(&self, queries: &Path, port: Option<u16>, set: &Settings) -> Result<(f64, f64)> {
        self.client.sh("ip link set dev lan0 xdp off")?;
        let mut cmd = self.client.cmd("kxdpgun");
        cmd.args([
            "-t",
            &set.secs.to_string(),
            "-Q",
            &set.flood_qps.to_string(),
            "-I",
            "lan0",
        ])
        .arg("-i")
        .arg(queries);
        if let Some(p) = port {
            cmd.args(["-p", &p.to_string()]);
        }
        cmd.arg(GATEWAY);
        let out = run(&mut cmd)?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "total queries:     599990 (199996 pps)" / "total replies:     215294 (71764 pps) (35%)"
        let pps = |key: &str| -> Option<f64> {
            let l = text.lines().find(|l| l.starts_with(key))?;
            l.split('(').nth(1)?.split_whitespace().next()?.parse().ok()
        };
        let sent = pps("total queries").context("no kxdpgun totals")?;
        let got = pps("total replies").unwrap_or(0.0);
        Ok((got, 1.0 - got / sent))
    }

    fn capacity(&self, row: &mut Row, queries: &Path, set: &Settings) -> Result<()> {
        let (qps, loss) = self.kxdpgun(queries, None, set)?;
        row.qps = Some(qps);
        row.loss = Some(loss);
        Ok(())
    }

    /// dnsperf at `latency_qps`: min, average and p99 of the per-query latency.
    fn latency(&self, row: &mut Row, queries: &Path, set: &Settings) -> Result<()> {
        let mut cmd = self.client.cmd("dnsperf");
        cmd.args([
            "-s",
            GATEWAY,
            "-l",
            &set.secs.to_string(),
            "-Q",
            &set.latency_qps.to_string(),
            "-c",
            "4",
            "-v",
        ])
        .arg("-d")
        .arg(queries);
        let out = run(&mut cmd)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lat: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("> "))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .map(|s| s * 1e6)
            .collect();
        if lat.is_empty() {
            bail!("dnsperf got no answers");
        }
        lat.sort_by(f64::total_cmp);
        row.lat_min_us = Some(lat[0]);
        row.lat_avg_us = Some(lat.iter().sum::<f64>() / lat.len() as f64);
        row.lat_p99_us = Some(lat[(lat.len() * 99 / 100).min(lat.len() - 1)]);
        Ok(())
    }

    /// The average ns per packet of program `id` under a kxdpgun run.
    fn ns_per_pkt(
        &self,
        id: u32,
        queries: &Path,
        port: Option<u16>,
        set: &Settings,
    ) -> Result<f64> {
        let (t0, n0) = prog_stats(id)?;
        self.kxdpgun(queries, port, set)?;
        let (t1, n1) = prog_stats(id)?;
        if n1 == n0 {
            bail!("program {id} ran no packet");
        }
        Ok((t1 - t0) as f64 / (n1 - n0) as f64)
    }
}

/// ns per run of dnssink's program on a blocked query, from BPF_PROG_TEST_RUN with repeat,
/// with the list's rules loaded.
fn test_run_ns(names: &[String]) -> Result<f64> {
    let rules = dnssink::compile::RuleSet::from_rules(
        names
            .iter()
            .map(|n| (n.as_str(), dnssink::lists::Kind::BlockExact)),
    )?;
    // The settings the daemon makes (`--clients any`: the client check runs, as it does in
    // every daemon).
    let s = dnssink::bpf::Sinkhole::load(&rules, &dnssink_tests::settings(&[]))?;
    let q = frame::query(
        &format!("{}.", names[names.len() / 2]),
        hickory_proto::rr::RecordType::A,
        true,
    );
    let input = frame::frame(&frame::Spec::v4(), &q);
    let mut out = vec![0u8; 2048];
    // One run a call: with `repeat`, the runs after the first would see the frame already
    // turned into the answer. The kernel reports each run's own time.
    let runs = 20_000u32;
    let mut total = 0u128;
    for _ in 0..runs {
        let r = s.program().test_run(TestRunOptions {
            data_in: Some(&input),
            data_out: Some(&mut out),
            repeat: 1,
            ..Default::default()
        })?;
        if r.return_value != 3 {
            bail!("test_run answered {}", r.return_value);
        }
        total += r.duration.as_nanos();
    }
    Ok(total as f64 / runs as f64)
}

fn report(rows: &[Row]) -> (String, String) {
    let f = |v: Option<f64>, d: usize| v.map_or(String::new(), |v| format!("{v:.d$}"));
    let mut md = String::from(
        "| peer | scenario | rules | load (s) | memory (MB) | cgroup peak attach / reload, after (MB) | qps | loss | lat min/avg/p99 (us) | ns/pkt blocked | allowed | other | mix | CPU ns/answer | test_run ns |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut objects = Vec::new();
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}/{}/{} | {} | {} | {} | {} | {} | {} |",
            r.peer,
            r.scenario,
            r.rules,
            f(r.load_s, 2),
            f(r.mem_bytes.map(|b| b as f64 / 1e6), 1),
            match (r.cg_attach, r.cg_reload, r.cg_after) {
                (None, None, None) => String::new(),
                (a, b, c) => {
                    let mb = |v: Option<u64>| f(v.map(|b| b as f64 / 1e6), 1);
                    format!("{} / {}, {}", mb(a), mb(b), mb(c))
                }
            },
            f(r.qps, 0),
            r.loss
                .map_or(String::new(), |l| format!("{:.1}%", l * 100.0)),
            f(r.lat_min_us, 0),
            f(r.lat_avg_us, 0),
            f(r.lat_p99_us, 0),
            f(r.ns_per_pkt, 0),
            f(r.ns_allowed, 0),
            f(r.ns_other, 0),
            f(r.ns_mix, 0),
            f(r.cpu_ns, 0),
            f(r.ns_test_run, 0),
        );
        let j = |v: Option<f64>| v.map_or("null".into(), |v| format!("{v:.3}"));
        objects.push(format!(
            "  {{\"peer\": \"{}\", \"scenario\": \"{}\", \"rules\": {}, \"qps\": {}, \"loss\": {}, \"lat_avg_us\": {}, \"lat_p99_us\": {}, \"mem_bytes\": {}, \"load_s\": {}, \"ns_per_pkt\": {}, \"lat_min_us\": {}, \"ns_per_pkt_allowed\": {}, \"ns_per_pkt_other\": {}, \"ns_test_run\": {}, \"ns_per_pkt_mix\": {}, \"cpu_ns_per_answer\": {}, \"kernel_bytes\": {}, \"cgroup_peak_attach_bytes\": {}, \"cgroup_peak_reload_bytes\": {}, \"cgroup_after_bytes\": {}}}",
            r.peer,
            r.scenario,
            r.rules,
            j(r.qps),
            j(r.loss),
            j(r.lat_avg_us),
            j(r.lat_p99_us),
            r.mem_bytes.map_or("null".into(), |b| b.to_string()),
            j(r.load_s),
            j(r.ns_per_pkt),
            j(r.lat_min_us),
            j(r.ns_allowed),
            j(r.ns_other),
            j(r.ns_test_run),
            j(r.ns_mix),
            j(r.cpu_ns),
            r.kernel_bytes.map_or("null".into(), |b| b.to_string()),
            r.cg_attach.map_or("null".into(), |b| b.to_string()),
            r.cg_reload.map_or("null".into(), |b| b.to_string()),
            r.cg_after.map_or("null".into(), |b| b.to_string()),
        ));
    }
    md.push_str(&targets(rows));
    (md, format!("[\n{}\n]\n", objects.join(",\n")))
}

/// The targets, as ratios within this run, at 1M rules.
fn targets(rows: &[Row]) -> String {
    let at = |peer: &str| {
        rows.iter()
            .find(|r| r.peer == peer && r.scenario == "synthetic 1M")
    };
    let (Some(d), Some(refl), Some(u), Some(m)) =
        (at("dnssink"), at("reflector"), at("unbound"), at("dnsmasq"))
    else {
        return String::new();
    };
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let line = |what: &str, v: Option<f64>, ok: &dyn Fn(f64) -> bool, want: &str| {
        format!(
            "| {what} | {} | {want} | {} |\n",
            v.map_or("-".into(), |v| format!("{v:.2}")),
            v.map_or("not measured", |v| if ok(v) { "met" } else { "missed" })
        )
    };
    let mut s = String::from("\n| target at 1M rules | measured | wanted | |\n|---|---|---|---|\n");
    // Issue 14's goals (the moonshot: blocked within 2x of the reflector).
    s += &line(
        "ns/pkt blocked / reflector's",
        ratio(d.ns_per_pkt, refl.ns_per_pkt),
        &|v| v <= 4.0,
        "<= 4",
    );
    s += &line(
        "ns/pkt allowed / reflector's",
        ratio(d.ns_allowed, refl.ns_per_pkt),
        &|v| v <= 3.0,
        "<= 3",
    );
    s += &line(
        "ns/pkt other / reflector's",
        ratio(d.ns_other, refl.ns_per_pkt),
        &|v| v <= 1.0,
        "<= 1.0",
    );
    s += &line(
        "blocked qps / reflector's",
        ratio(d.qps, refl.qps),
        &|v| v >= 0.8,
        ">= 0.8",
    );
    s += &line(
        "blocked qps / unbound's",
        ratio(d.qps, u.qps),
        &|v| v >= 3.0,
        ">= 3",
    );
    s += &line(
        "CPU per answer / unbound's",
        ratio(d.cpu_ns, u.cpu_ns),
        &|v| v <= 0.1,
        "<= 0.1",
    );
    s += &line(
        "memory / dnsmasq's growth",
        ratio(d.mem_bytes.map(|b| b as f64), m.mem_bytes.map(|b| b as f64)),
        &|v| v <= 0.25,
        "<= 0.25",
    );
    s
}

/// qps and memory per peer, for each scenario, as an SVG bar chart.
fn chart(rows: &[Row], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let scenarios: Vec<&String> = {
        let mut v: Vec<&String> = rows.iter().map(|r| &r.scenario).collect();
        v.dedup();
        v
    };
    let peers = ["reflector", "dnssink", "unbound", "dnsmasq"];
    let colors = [BLACK, BLUE, RED, GREEN];
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(450);
    for (area, title, value) in [
        (
            &left,
            "qps answered (k)",
            &(|r: &Row| r.qps.map(|q| q / 1000.0)) as &dyn Fn(&Row) -> Option<f64>,
        ),
        (&right, "memory for the list (MB)", &|r: &Row| {
            r.mem_bytes.map(|b| b as f64 / 1e6)
        }),
    ] {
        let max = rows.iter().filter_map(value).fold(1.0f64, f64::max) * 1.1;
        let n = (scenarios.len() * peers.len()) as i32;
        let mut c = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(20)
            .y_label_area_size(50)
            .build_cartesian_2d(0..n, 0.0..max)?;
        c.configure_mesh().disable_x_mesh().x_labels(0).draw()?;
        for (pi, p) in peers.iter().enumerate() {
            let bars: Vec<Rectangle<(i32, f64)>> = scenarios
                .iter()
                .enumerate()
                .filter_map(|(si, sc)| {
                    let v = rows
                        .iter()
                        .find(|r| &r.scenario == *sc && r.peer == *p)
                        .and_then(value)?;
                    let x = (si * peers.len() + pi) as i32;
                    Some(Rectangle::new([(x, 0.0), (x + 1, v)], colors[pi].filled()))
                })
                .collect();
            let color = colors[pi];
            c.draw_series(bars)?
                .label(*p)
                .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 8, y + 4)], color.filled()));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

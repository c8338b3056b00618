//! Network-namespace labs: a client and a gateway joined by a veth pair, real processes in
//! them, all of it removed on drop (processes first, by PID, then the namespaces).

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs a command to completion; fails with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out)
}

/// A network namespace with a unique name, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Result<Netns> {
        let name = format!(
            "dnssink-{role}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.sh("ip link set lo up")?;
        Ok(ns)
    }

    /// A command to run inside the namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// `dnssink` inside the namespace. Through `nsenter --net` rather than `ip netns exec`,
    /// which gives each command a mount namespace of its own with a fresh /sys: there the
    /// daemon's pins on /sys/fs/bpf would be out of reach of the commands that read them.
    pub fn dnssink(&self) -> Result<Command> {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name))
            .arg(dnssink_bin()?);
        Ok(c)
    }

    /// Runs each line of `script` as a command inside the namespace.
    pub fn sh(&self, script: &str) -> Result<()> {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut words = line.split_whitespace();
            let mut c = self.cmd(words.next().unwrap());
            c.args(words);
            run(&mut c)?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // What a dnssink left here, even one that was killed: its pins (a kept program's link
        // among them) and its state files.
        if let Ok(m) = std::fs::metadata(format!("/run/netns/{}", self.name)) {
            use std::os::unix::fs::MetadataExt as _;
            let ino = m.ino();
            for (dir, suffix) in [
                ("/sys/fs/bpf/dnssink", format!("@{ino}")),
                ("/run/dnssink", format!(".{ino}")),
            ] {
                for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.ends_with(&suffix) || name.contains(&format!("{suffix}.")) {
                        let _ = std::fs::remove_dir_all(e.path())
                            .or_else(|_| std::fs::remove_file(e.path()));
                    }
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A process the test started, stopped by its PID on drop (SIGTERM, then SIGKILL).
pub struct Proc {
    pub what: String,
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Proc {
    /// Starts `cmd` with its stdout and stderr read into lines.
    pub fn spawn(what: &str, mut cmd: Command) -> Result<Proc> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}: {cmd:?}"))?;
        let (tx, rx) = mpsc::channel();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Proc {
            what: what.into(),
            child,
            lines: rx,
            seen: Vec::new(),
        })
    }

    /// Waits for an output line containing `needle`; fails if the process exits first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!(
                        "{} exited ({status}) before printing {needle:?}; it printed:\n{}",
                        self.what,
                        self.seen.join("\n")
                    );
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not print {needle:?} within {timeout:?}; it printed:\n{}",
                    self.what,
                    self.seen.join("\n")
                );
            }
        }
    }

    /// Every line printed so far, without waiting.
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Sends SIGTERM and waits for the exit; returns the status and all output.
    /// Kills the process with SIGKILL, as a crash or the OOM killer would, and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        signal(self.child.id(), libc::SIGKILL);
        self.child.wait()?;
        Ok(())
    }

    pub fn stop(&mut self) -> Result<(std::process::ExitStatus, Vec<String>)> {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                signal(self.child.id(), libc::SIGKILL);
                bail!("{} did not stop on SIGTERM", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(l);
        }
        Ok((status, self.seen.clone()))
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: signals one PID that this test started and has not reaped.
    unsafe { libc::kill(pid as i32, sig) };
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            signal(self.child.id(), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// The gateway's addresses on the LAN.
pub const GW4: &str = "198.18.0.1";
pub const GW6: &str = "2001:db8::1";
/// What the lab's resolver answers for every name it is asked.
pub const RESOLVER_A: &str = "198.18.100.9";
pub const RESOLVER_AAAA: &str = "2001:db8:100::9";
/// The LAN interface names inside the namespaces.
pub const CLIENT_IF: &str = "lan0";
pub const GATEWAY_IF: &str = "lan0";

/// A client and a gateway namespace joined by veth, and a dnsmasq resolver on the gateway
/// that answers every name with [`RESOLVER_A`] / [`RESOLVER_AAAA`].
pub struct Lab {
    // Dropped in order: processes before the namespaces they live in.
    pub procs: Vec<Proc>,
    /// The tc programs of a VLAN lab, attached while this lives.
    vlan: Vec<aya::Ebpf>,
    pub client: Netns,
    pub gateway: Netns,
    /// The internet side, with [`Lab::with_outside`].
    pub outside: Option<Netns>,
    /// A second client on another port of the bridge, with [`Lab::with_bridge`].
    pub second: Option<Netns>,
    /// The gateway's LAN interface, which dnssink attaches to.
    pub iface: &'static str,
}

/// The bridge of [`Lab::with_bridge`], named as OpenWrt names its LAN, and the second
/// client's address.
pub const BRIDGE: &str = "br-lan";
pub const SECOND4: &str = "198.18.0.3";

/// The outside host's addresses, and what its resolver answers.
pub const OUT4: &str = "198.19.0.2";
pub const OUT6: &str = "2001:db8:1::2";
pub const OUTSIDE_A: &str = "198.19.100.9";

impl Lab {
    /// An untagged LAN.
    pub fn new() -> Result<Lab> {
        Lab::build(false)
    }

    /// An untagged LAN whose resolver logs every query it gets (`--log-queries`), read with
    /// [`Lab::resolver_log`].
    pub fn with_query_log() -> Result<Lab> {
        let mut lab = Lab::build(false)?;
        lab.procs.clear();
        let p = resolver_with(
            &lab.gateway,
            "dnsmasq",
            &[GW4, GW6],
            &[RESOLVER_A, RESOLVER_AAAA],
            &["--log-queries"],
        )?;
        lab.procs.push(p);
        lab.wait_answer(GW4, RESOLVER_A)?;
        Ok(lab)
    }

    /// The queries the gateway's resolver logged so far: `query[TYPE] NAME from ADDR` lines.
    pub fn resolver_log(&mut self) -> Vec<String> {
        let p = self
            .procs
            .iter_mut()
            .find(|p| p.what == "dnsmasq")
            .expect("the lab's resolver");
        p.drain()
            .iter()
            .filter(|l| l.contains("query["))
            .cloned()
            .collect()
    }

    /// A LAN whose every frame carries an 802.1Q tag with VLAN ID 100, as between two VLAN
    /// subinterfaces; dnssink attaches to the parent veth and reads the tags. (This kernel has
    /// no 8021q module, so the tags are pushed and popped by tc programs.)
    pub fn with_vlan() -> Result<Lab> {
        Lab::build(true)
    }

    /// Three namespaces: the client, the gateway routing between the LAN and `wan0`, and an
    /// outside host (198.19.0.2, 2001:db8:1::2) running a resolver of its own that answers
    /// every name with [`OUTSIDE_A`].
    pub fn with_outside() -> Result<Lab> {
        let mut lab = Lab::build(false)?;
        let out = Netns::new("out")?;
        veth(&lab.gateway, "wan0", &out, "wan0")?;
        lab.gateway.sh("ip link set wan0 up
             ip addr add 198.19.0.1/24 dev wan0
             ip -6 addr add 2001:db8:1::1/64 dev wan0 nodad
             sysctl -qw net.ipv4.ip_forward=1
             sysctl -qw net.ipv6.conf.all.forwarding=1")?;
        out.sh(&format!(
            "ip link set wan0 up
             ip addr add {OUT4}/24 dev wan0
             ip -6 addr add {OUT6}/64 dev wan0 nodad
             ip route add 198.18.0.0/24 via 198.19.0.1
             ip -6 route add 2001:db8::/64 via 2001:db8:1::1"
        ))?;
        lab.client.sh("ip route add default via 198.18.0.1
             ip -6 route add default via 2001:db8::1")?;
        lab.procs.push(resolver(
            &out,
            "outside dnsmasq",
            &[OUT4, OUT6],
            &[OUTSIDE_A],
        )?);
        lab.outside = Some(out);
        // Routed and answering, before dnssink is there.
        lab.wait_answer(OUT4, OUTSIDE_A)?;
        Ok(lab)
    }

    /// The LAN as an OpenWrt router builds it: a bridge (`br-lan`) holding the gateway's
    /// addresses, with a veth port for each of two clients (`lan1`, `lan2`), the second at
    /// 198.18.0.3 and 2001:db8::3. dnssink attaches to the bridge.
    pub fn with_bridge() -> Result<Lab> {
        let client = Netns::new("client")?;
        let second = Netns::new("client2")?;
        let gateway = Netns::new("gw")?;
        veth(&client, CLIENT_IF, &gateway, "lan1")?;
        veth(&second, CLIENT_IF, &gateway, "lan2")?;
        gateway.sh(&format!(
            "ip link add {BRIDGE} type bridge
             ip link set lan1 master {BRIDGE}
             ip link set lan2 master {BRIDGE}
             ip link set lan1 up
             ip link set lan2 up
             ip link set {BRIDGE} up
             ip addr add {GW4}/24 dev {BRIDGE}
             ip -6 addr add {GW6}/64 dev {BRIDGE} nodad"
        ))?;
        for (ns, host) in [(&client, "2"), (&second, "3")] {
            lan_address(ns, host)?;
        }
        let mut lab = Lab {
            procs: Vec::new(),
            vlan: Vec::new(),
            client,
            gateway,
            outside: None,
            second: Some(second),
            iface: BRIDGE,
        };
        lab.start_resolver()?;
        Ok(lab)
    }

    fn build(vlan: bool) -> Result<Lab> {
        let client = Netns::new("client")?;
        let gateway = Netns::new("gw")?;
        veth(&client, CLIENT_IF, &gateway, GATEWAY_IF)?;
        for (ns, host) in [(&client, "2"), (&gateway, "1")] {
            lan_address(ns, host)?;
        }
        let mut lab = Lab {
            procs: Vec::new(),
            vlan: Vec::new(),
            client,
            gateway,
            outside: None,
            second: None,
            iface: GATEWAY_IF,
        };
        if vlan {
            for ns in [&lab.client, &lab.gateway] {
                ns.sh(&format!("ethtool -K {CLIENT_IF} txvlan off"))?;
                lab.vlan
                    .push(in_netns(&ns.name, || attach_vlan(CLIENT_IF))?);
            }
        }
        lab.start_resolver()?;
        Ok(lab)
    }

    fn start_resolver(&mut self) -> Result<()> {
        let p = resolver(
            &self.gateway,
            "dnsmasq",
            &[GW4, GW6],
            &[RESOLVER_A, RESOLVER_AAAA],
        )?;
        self.procs.push(p);
        self.wait_answer(GW4, RESOLVER_A)
    }

    /// Waits until `server` answers a query from the client with `want`.
    fn wait_answer(&self, server: &str, want: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(d) = self.dig(server, "ready.test", "A")
                && d.answers.iter().any(|a| a.ends_with(want))
            {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "{server} does not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `dnssink ARGS...` on the gateway to the end (`reload`, `query`...).
    pub fn run_dnssink(&self, args: &[&str]) -> Result<Output> {
        let mut c = self.gateway.dnssink()?;
        c.args(args);
        Ok(c.output()?)
    }

    /// Starts `dnssink attach` on the gateway's LAN interface and waits until it is attached.
    pub fn start_dnssink(&mut self, args: &[&str]) -> Result<String> {
        self.start_dnssink_env(args, &[])
    }

    /// [`Lab::start_dnssink`] with variables in its environment (`DNSSINK_COMPAT`...).
    pub fn start_dnssink_env(&mut self, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
        let mut cmd = self.gateway.dnssink()?;
        cmd.args(["attach", self.iface]).args(args);
        cmd.envs(env.iter().copied());
        let mut p = Proc::spawn("dnssink", cmd)?;
        let line = p.wait_for("dnssink: attached", Duration::from_secs(60))?;
        self.procs.push(p);
        Ok(line)
    }

    /// `dig @server name type` from the client.
    pub fn dig(&self, server: &str, name: &str, qtype: &str) -> Result<Dig> {
        self.dig_with(server, name, qtype, &[])
    }

    /// [`Lab::dig`] with more options (`+tcp`...).
    pub fn dig_with(&self, server: &str, name: &str, qtype: &str, opts: &[&str]) -> Result<Dig> {
        dig_from(&self.client, server, name, qtype, opts)
    }
}

/// `dig @server name type OPTS` from `ns`.
pub fn dig_from(ns: &Netns, server: &str, name: &str, qtype: &str, opts: &[&str]) -> Result<Dig> {
    let out = run(ns
        .cmd("dig")
        .args([
            &format!("@{server}"),
            name,
            qtype,
            "+tries=1",
            "+time=2",
            "+nocookie",
        ])
        .args(opts))?;
    Dig::parse(&String::from_utf8_lossy(&out.stdout))
}

/// Brings up `ns`'s LAN interface ([`CLIENT_IF`]) as host `host` of 198.18.0.0/24 and
/// 2001:db8::/64.
fn lan_address(ns: &Netns, host: &str) -> Result<()> {
    let ifc = CLIENT_IF;
    ns.sh(&format!(
        "ip link set {ifc} up
         ip addr add 198.18.0.{host}/24 dev {ifc}
         ip -6 addr add 2001:db8::{host}/64 dev {ifc} nodad"
    ))
}

/// A veth pair from `a` (named `a_if`) to `b` (named `b_if`), made in place so that the root
/// namespace never holds either end.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    run(Command::new("ip").args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]))?;
    Ok(())
}

/// dnsmasq in `ns`, listening on `listen` and answering every name with `answers`.
pub fn resolver(ns: &Netns, what: &str, listen: &[&str], answers: &[&str]) -> Result<Proc> {
    resolver_with(ns, what, listen, answers, &[])
}

fn resolver_with(
    ns: &Netns,
    what: &str,
    listen: &[&str],
    answers: &[&str],
    extra: &[&str],
) -> Result<Proc> {
    let mut cmd = ns.cmd("dnsmasq");
    cmd.args(extra);
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--user=root",
        "--pid-file=",
        "--log-facility=-",
        "--cache-size=0",
    ]);
    cmd.arg(format!("--listen-address={}", listen.join(",")));
    for a in answers {
        cmd.arg(format!("--address=/#/{a}"));
    }
    let mut p = Proc::spawn(what, cmd)?;
    p.wait_for("started", Duration::from_secs(10))?;
    Ok(p)
}

/// The lab's own BPF programs (`tests/lab-ebpf`): the tc programs of the VLAN lab, and the
/// bench's reflector and pass program.
pub static LAB_PROGRAMS: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dnssink-lab"));

/// Runs `f` in a thread that has entered the network namespace `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
            // SAFETY: setns on this thread only, with a namespace fd that is open.
            let r =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            ensure!(r == 0, "setns {ns}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread in {ns} panicked"))?
    })
}

/// Loads the lab's tc programs and attaches them to `iface`: push VLAN 100 on egress, pop it
/// (and drop untagged frames) on ingress.
fn attach_vlan(iface: &str) -> Result<aya::Ebpf> {
    use aya::programs::{SchedClassifier, TcAttachType, tc};
    let mut ebpf = aya::Ebpf::load(LAB_PROGRAMS).context("loading the lab's tc programs")?;
    let _ = tc::qdisc_add_clsact(iface); // may exist already
    for (name, dir) in [
        ("vlan_push", TcAttachType::Egress),
        ("vlan_pop", TcAttachType::Ingress),
    ] {
        let p: &mut SchedClassifier = ebpf
            .program_mut(name)
            .with_context(|| format!("no program {name}"))?
            .try_into()?;
        p.load()?;
        p.attach(iface, dir)
            .with_context(|| format!("attaching {name} to {iface}"))?;
    }
    Ok(ebpf)
}

/// The id of the map that holds the live rule table of program `prog` (the inner map in its
/// array-of-maps), read with bpftool.
pub fn live_table(prog: &str) -> Result<u32> {
    let show = |what: &str, id: &str| -> Result<String> {
        let out = run(Command::new("bpftool").args([what, "show", "id", id]))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let p = show("prog", prog)?;
    let ids = p
        .split("map_ids ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .context("the program has no maps")?;
    for id in ids.split(',') {
        if !show("map", id)?.contains("array_of_maps  name TABLES") {
            continue;
        }
        // "key: 00 00 00 00  value: 13 05 00 00": the inner map's id, little-endian.
        let dump = run(Command::new("bpftool").args(["map", "dump", "id", id]))?;
        let d = String::from_utf8_lossy(&dump.stdout);
        let bytes: Vec<u8> = d
            .split("value:")
            .nth(1)
            .context("the table slot is empty")?
            .split_whitespace()
            .take(4)
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<_, _>>()?;
        let bytes: [u8; 4] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("short map id"))?;
        return Ok(u32::from_le_bytes(bytes));
    }
    anyhow::bail!("no array-of-maps among the maps {ids} of program {prog}")
}

/// `bpftool map show id ID`, or None when the map is gone.
pub fn map_show(id: u32) -> Option<String> {
    let out = Command::new("bpftool")
        .args(["map", "show", "id", &id.to_string()])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What dig printed, by section.
#[derive(Debug, Default)]
pub struct Dig {
    pub status: String,
    pub flags: String,
    pub answers: Vec<String>,
    pub authority: Vec<String>,
    pub question: Vec<String>,
    pub text: String,
}

impl Dig {
    pub fn parse(text: &str) -> Result<Dig> {
        let mut d = Dig {
            text: text.into(),
            ..Dig::default()
        };
        let mut section = "";
        for line in text.lines() {
            if let Some(rest) = line.split("status: ").nth(1) {
                d.status = rest.split(',').next().unwrap_or("").to_string();
            }
            if let Some(rest) = line.strip_prefix(";; flags: ") {
                d.flags = rest.split(';').next().unwrap_or("").to_string();
            }
            if line.starts_with(";; ") && line.ends_with("SECTION:") {
                section = if line.contains("QUESTION") {
                    "q"
                } else if line.contains("ANSWER") {
                    "an"
                } else if line.contains("AUTHORITY") {
                    "ns"
                } else {
                    ""
                };
                continue;
            }
            if line.trim().is_empty() {
                section = "";
                continue;
            }
            match section {
                "q" => d.question.push(line.to_string()),
                "an" => d.answers.push(line.to_string()),
                "ns" => d.authority.push(line.to_string()),
                _ => {}
            }
        }
        ensure!(!d.status.is_empty(), "dig got no answer:\n{text}");
        Ok(d)
    }

    /// Asserts dnssink's NXDOMAIN answer, with RD copied and RA set.
    pub fn assert_sinkholed(&self) {
        assert_eq!(self.status, "NXDOMAIN", "{}", self.text);
        assert!(self.from_dnssink(), "the SOA of dnssink:\n{}", self.text);
        assert!(
            self.flags.contains("rd") && self.flags.contains("ra"),
            "{}",
            self.text
        );
    }

    /// Asserts the resolver's answer, `addr`.
    pub fn assert_resolved(&self, addr: &str) {
        assert_eq!(self.status, "NOERROR", "{}", self.text);
        assert!(
            self.answers.iter().any(|a| a.ends_with(addr)),
            "the resolver's answer {addr}:\n{}",
            self.text
        );
    }

    /// The answer came from dnssink: its SOA names `dnssink.invalid.`.
    pub fn from_dnssink(&self) -> bool {
        self.authority
            .iter()
            .any(|l| l.contains("dnssink.invalid."))
    }
}

/// The `dnssink` binary: `$DNSSINK_BIN`, or `target/<profile>/dnssink` beside this program
/// (a test runs from `target/<profile>/deps/`).
pub fn dnssink_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DNSSINK_BIN") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .context("no directory for the running program")?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("dnssink"))
        .find(|b| b.is_file())
        .with_context(|| {
            format!(
                "no dnssink binary near {}: build it first (`cargo build -p dnssink`; \
                 `cargo xtask test` does)",
                dir.display()
            )
        })
}

/// Sends DNS queries over UDP from the client (198.18.0.2) to `server`, one at a time, until
/// `stop` is set: the `n`-th (from 1) asks `name(n)` for A, with ID `n` (mod 2^16).
/// `each(n, answer)` sees the answer that carries its ID, or `None` when none came within
/// `wait`. Run it inside the client's namespace ([`in_netns`]).
pub fn query_stream(
    server: (&str, u16),
    wait: Duration,
    stop: &std::sync::atomic::AtomicBool,
    mut name: impl FnMut(usize) -> String,
    mut each: impl FnMut(usize, Option<hickory_proto::op::Message>),
) -> Result<()> {
    let sock = std::net::UdpSocket::bind("198.18.0.2:0")?;
    sock.set_read_timeout(Some(wait))?;
    sock.connect(server)?;
    let mut buf = [0u8; 1500];
    let mut n = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        n += 1;
        let id = n as u16;
        let mut q = crate::frame::query(&name(n), hickory_proto::rr::RecordType::A, true);
        q[0..2].copy_from_slice(&id.to_be_bytes());
        sock.send(&q)?;
        let answer = loop {
            match sock.recv(&mut buf) {
                Ok(len) => {
                    let m = hickory_proto::op::Message::from_vec(&buf[..len])?;
                    if m.id() == id {
                        break Some(m);
                    }
                }
                Err(_) => break None,
            }
        };
        each(n, answer);
    }
    Ok(())
}

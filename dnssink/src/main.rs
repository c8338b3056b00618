//! The `dnssink` command.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use dnssink::{
    ListSpec, bpf,
    lists::{Format, Options, Role},
    response,
    state::State,
};
use dnssink_common::config::Config;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "dnssink",
    version,
    about = "A DNS sinkhole in the kernel: XDP answers blocked names at the gateway NIC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach to the LAN-facing interface and answer blocked names until SIGINT or SIGTERM.
    /// SIGHUP re-reads the lists.
    Attach(AttachArgs),
    /// Make the instance attached to IFACE re-read its lists, and report how it went.
    Reload {
        iface: String,
        /// How long to wait for the result.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
    },
    /// Is a name blocked, and by which rule? Asks the lists of the running instance, or with
    /// --blocklist the lists given.
    Query(QueryArgs),
}

/// The lists and how to read them.
#[derive(clap::Args, Clone)]
struct ListArgs {
    /// A list of names to block (hosts, domains, adblock, wildcard, dnsmasq, unbound or RPZ,
    /// detected from content). Repeatable.
    #[arg(long = "blocklist", value_name = "FILE")]
    blocklists: Vec<PathBuf>,
    /// A list of names never to block, in the same formats. Repeatable.
    #[arg(long = "allowlist", value_name = "FILE")]
    allowlists: Vec<PathBuf>,
    /// Read every list in this format instead of detecting it.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Exact entries of hosts and domain lists block (or allow) their subdomains too.
    #[arg(long)]
    subdomains: bool,
    /// Fail on any line that gives no rule, naming its file and line.
    #[arg(long)]
    strict: bool,
    /// Do not answer the browser and OS canaries (use-application-dns.net, mask.icloud.com,
    /// mask-h2.icloud.com, resolver.arpa) in the kernel.
    #[arg(long)]
    no_canaries: bool,
}

impl ListArgs {
    fn specs(&self) -> Vec<ListSpec> {
        let opts = |role| Options {
            role,
            format: self.format,
            subdomains: self.subdomains,
        };
        let block = self.blocklists.iter().map(|p| ListSpec {
            path: p.clone(),
            opts: opts(Role::Block),
        });
        let allow = self.allowlists.iter().map(|p| ListSpec {
            path: p.clone(),
            opts: opts(Role::Allow),
        });
        block.chain(allow).collect()
    }

    fn load(&self) -> Result<dnssink::Loaded> {
        dnssink::load_lists(&self.specs(), self.strict, !self.no_canaries)
    }
}

#[derive(clap::Args)]
struct AttachArgs {
    /// The LAN-facing interface, where client queries arrive.
    iface: String,
    #[command(flatten)]
    lists: ListArgs,
    /// What a blocked name gets: nxdomain, nodata, null (0.0.0.0 and ::), refused, or the
    /// address(es) of a block page, e.g. 198.18.0.10,2001:db8::10.
    #[arg(long, value_name = "MODE", default_value = "nxdomain", value_parser = response::parse)]
    response: Config,
    /// TTL in seconds of answers, and of negative answers (through the SOA).
    #[arg(long, value_name = "SECS", default_value_t = Config::DEFAULT_TTL)]
    ttl: u32,
    /// Where the program runs.
    #[arg(long, value_enum, default_value_t = bpf::Mode::Auto)]
    mode: bpf::Mode,
    /// An internal resolver (repeatable, IPv4 or IPv6). Given any, DNS from the clients to
    /// any other address is dropped (UDP and TCP port 53), unless its name is answered here.
    #[arg(long = "resolver", value_name = "ADDR")]
    resolvers: Vec<std::net::IpAddr>,
    /// Drop traffic to this port (repeatable), e.g. tcp/5222. DNS over TLS (tcp/853) and over
    /// QUIC (udp/853) are always dropped.
    #[arg(long = "block-port", value_name = "PROTO/PORT", value_parser = dnssink::iplist::parse_port)]
    block_ports: Vec<(u8, u16)>,
    /// Drop traffic to the destinations in this file (repeatable): one CIDR a line, with
    /// `any` or the ports it covers (`216.239.37.125 tcp/5222,tcp/5223`).
    #[arg(long = "block-ip", value_name = "FILE")]
    block_ips: Vec<PathBuf>,
}

impl AttachArgs {
    fn ip_rules(&self) -> Result<dnssink::iplist::IpRules> {
        let mut rules = dnssink::iplist::IpRules::default();
        for f in &self.block_ips {
            rules.load(f)?;
        }
        Ok(rules)
    }

    fn config(&self, ip_rules: &dnssink::iplist::IpRules) -> Config {
        let mut c = self.response;
        c.ttl = self.ttl;
        c.enforce = !self.resolvers.is_empty() as u8;
        c.policy = (c.enforce != 0 || !ip_rules.is_empty() || !self.block_ports.is_empty()) as u8;
        c
    }
}

#[derive(clap::Args)]
struct QueryArgs {
    /// Names to look up.
    #[arg(required = true)]
    names: Vec<String>,
    /// The instance to ask, when several are attached.
    #[arg(long)]
    iface: Option<String>,
    #[command(flatten)]
    lists: ListArgs,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Attach(args) => attach(args),
        Command::Reload { iface, timeout } => State::reload(&iface, Duration::from_secs(timeout))
            .map(|summary| {
                println!("dnssink: reloaded {iface}: {summary}");
            }),
        Command::Query(args) => query(args),
    };
    if let Err(e) = result {
        eprintln!("dnssink: error: {e:#}");
        std::process::exit(1);
    }
}

fn attach(args: AttachArgs) -> Result<()> {
    if args.lists.blocklists.is_empty() {
        bail!("no list: give at least one --blocklist FILE");
    }
    bpf::check_interface(&args.iface)?;
    bpf::check_privileges()?;
    let started = std::time::Instant::now();
    let ip_rules = args.ip_rules()?;
    let config = args.config(&ip_rules);
    // The verifier checks the program while the lists are read: two cores, half the wait.
    // The lists are read on this thread, so that their memory comes from the main arena,
    // which malloc_trim hands back to the system whole once the table is in the kernel.
    let (loaded, sinkhole) = std::thread::scope(|s| {
        let program = s.spawn(|| bpf::Sinkhole::load_program(&config));
        let loaded = args.lists.load();
        let sinkhole = program
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the program loader panicked")));
        (loaded, sinkhole)
    });
    let (loaded, mut sinkhole) = (loaded?, sinkhole?);
    tracing::debug!(
        "lists compiled and program verified at {:.3}s",
        started.elapsed().as_secs_f64()
    );
    sinkhole.swap(&loaded.rules, &ip_rules)?;
    sinkhole.set_resolvers(&args.resolvers)?;
    sinkhole.set_ports(&args.block_ports)?;
    tracing::debug!("table filled at {:.3}s", started.elapsed().as_secs_f64());
    let mode = sinkhole.attach(&args.iface, args.mode)?;
    let mut state = State {
        pid: std::process::id(),
        args: std::env::args().skip(1).collect(),
        reloads: 0,
        last_reload: String::new(),
    };
    state.write(&args.iface)?;
    println!(
        "dnssink: attached to {} ({mode} mode, program id {}): {}; response {}, ttl {}s; {}; \
         rule table {} KiB, loaded in {:.2}s",
        args.iface,
        sinkhole.program_id()?,
        loaded.summary(),
        response::describe(&config),
        config.ttl,
        policy_summary(&args, &ip_rules),
        loaded.rules.table_bytes() / 1024,
        started.elapsed().as_secs_f64(),
    );
    drop(loaded);
    release_memory();
    let result = serve(&args, &mut sinkhole, &mut state);
    State::remove(&args.iface);
    drop(sinkhole);
    println!("dnssink: detached from {}", args.iface);
    result
}

/// Hands the memory of the lists, now in the kernel, back to the system: the allocator keeps
/// freed heap otherwise, and a router has little RAM.
fn release_memory() {
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe { libc::malloc_trim(0) };
}

/// Waits for signals: SIGHUP reloads, SIGINT and SIGTERM end.
fn serve(args: &AttachArgs, sinkhole: &mut bpf::Sinkhole, state: &mut State) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    state.reloads += 1;
                    state.last_reload = match reload(args, sinkhole) {
                        Ok(summary) => {
                            println!("dnssink: reloaded {}: {summary}", args.iface);
                            format!("ok {summary}")
                        }
                        Err(e) => {
                            println!("dnssink: reload failed, the old rules stay: {e:#}");
                            format!("failed {e:#}")
                        }
                    };
                    state.write(&args.iface)?;
                    release_memory();
                }
            }
        }
        tracing::info!("signal received: detaching");
        Ok(())
    })
}

/// What is dropped, in a few words.
fn policy_summary(args: &AttachArgs, ip_rules: &dnssink::iplist::IpRules) -> String {
    let resolvers = if args.resolvers.is_empty() {
        "DNS to any resolver".to_string()
    } else {
        let r: Vec<String> = args.resolvers.iter().map(|a| a.to_string()).collect();
        format!("DNS only to {}", r.join(", "))
    };
    format!(
        "{resolvers}; dropping DoT/DoQ, {} port{}, {} blocked destination{}",
        args.block_ports.len(),
        if args.block_ports.len() == 1 { "" } else { "s" },
        ip_rules.len(),
        if ip_rules.len() == 1 { "" } else { "s" },
    )
}

/// Re-reads every list and swaps the new tables in; on any error the old ones stay live.
fn reload(args: &AttachArgs, sinkhole: &mut bpf::Sinkhole) -> Result<String> {
    let started = std::time::Instant::now();
    let loaded = args.lists.load()?;
    let ip_rules = args.ip_rules()?;
    sinkhole.swap(&loaded.rules, &ip_rules)?;
    sinkhole.set_config(&args.config(&ip_rules))?;
    Ok(format!(
        "{}; rule table {} KiB, in {:.2}s",
        loaded.summary(),
        loaded.rules.table_bytes() / 1024,
        started.elapsed().as_secs_f64()
    ))
}

fn query(args: QueryArgs) -> Result<()> {
    let lists = if args.lists.blocklists.is_empty() && args.lists.allowlists.is_empty() {
        let iface = match args.iface {
            Some(i) => i,
            None => only_instance()?,
        };
        let st = State::read(&iface)?;
        let argv = std::iter::once("dnssink".to_string()).chain(st.args);
        match Cli::try_parse_from(argv)
            .context("the running instance's arguments")?
            .command
        {
            Command::Attach(a) => a.lists,
            _ => bail!("the state of {iface} does not describe an attach"),
        }
    } else {
        args.lists
    };
    let loaded = lists.load()?;
    print!(
        "{}",
        dnssink::query::explain(&loaded, &lists.specs(), &args.names)?
    );
    Ok(())
}

/// The interface of the one instance attached in this namespace.
fn only_instance() -> Result<String> {
    let ns = dnssink::state::path("x")?;
    let suffix = ns
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir(dnssink::state::DIR) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(iface) = name.strip_suffix(&format!(".{suffix}"))
                && State::read(iface).is_ok()
            {
                found.push(iface.to_string());
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no dnssink is attached here: give --blocklist FILE to query lists offline"),
        _ => bail!(
            "several instances are attached ({}): choose one with --iface",
            found.join(", ")
        ),
    }
}

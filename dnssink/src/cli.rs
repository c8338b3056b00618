//! The command line, and nothing else: every command and option, for the `dnssink` binary and
//! `cargo xtask dist` (man page and completions). `attach` gives a [`Plan`], as the config
//! file does (`config_file`, whose keys are the long options of `attach`).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::{
    bpf,
    lists::Format,
    plan::{self, ListPlan, OnExit, Plan, Port, default},
    response::Response,
};

#[derive(Parser)]
#[command(
    name = "dnssink",
    version,
    about = "A DNS sinkhole in the kernel: XDP answers blocked names at the gateway NIC",
    long_about = "A DNS sinkhole in the kernel: an XDP program on the LAN-facing interface of a \
                  router answers queries for blocked names in place, and passes the rest to the \
                  internal resolver. Logs go to stderr; RUST_LOG sets their level \
                  (e.g. RUST_LOG=debug)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Attach to the LAN-facing interface and answer blocked names until SIGINT or SIGTERM.
    /// SIGHUP re-reads the lists.
    Attach(AttachArgs),
    /// Run the interfaces of a config file, as `attach` does for one.
    Run {
        /// The config file (TOML): top-level keys are defaults for every [[interface]]; the
        /// keys are the long options of `attach`.
        #[arg(long, value_name = "FILE", default_value = "/etc/dnssink/dnssink.toml")]
        config: PathBuf,
    },
    /// Check a config file and its lists without attaching anything.
    CheckConfig {
        #[arg(long, value_name = "FILE", default_value = "/etc/dnssink/dnssink.toml")]
        config: PathBuf,
    },
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
    /// The kernel's counters for an attached interface.
    Stats {
        /// The interface; optional when only one is attached.
        iface: Option<String>,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The attached interfaces: mode, program, rules, lists and their age, uptime.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Remove dnssink from IFACE: stop its daemon, detach the program, remove its pins.
    Detach {
        iface: String,
        /// How long to wait for the daemon to stop.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
    },
    /// The query log: the recent queries the kernel answered (and passed, with --log-all).
    Log(LogArgs),
    /// The most-blocked names (or clients) in the recent query log.
    Top {
        iface: Option<String>,
        /// Rank clients instead of names.
        #[arg(long)]
        clients: bool,
        /// How many to show.
        #[arg(short = 'n', default_value_t = 10)]
        n: usize,
        #[arg(long)]
        json: bool,
    },
}

/// The lists and how to read them.
#[derive(clap::Args, Clone)]
pub struct ListArgs {
    /// A list of names to block (hosts, domains, adblock, wildcard, dnsmasq, unbound or RPZ,
    /// detected from content). Repeatable.
    #[arg(long = "blocklist", value_name = "FILE")]
    pub blocklists: Vec<PathBuf>,
    /// A list of names never to block, in the same formats. Repeatable.
    #[arg(long = "allowlist", value_name = "FILE")]
    pub allowlists: Vec<PathBuf>,
    /// Read every list in this format instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Exact entries of hosts and domain lists block (or allow) their subdomains too.
    #[arg(long)]
    pub subdomains: bool,
    /// Fail on any line that gives no rule, naming its file and line.
    #[arg(long)]
    pub strict: bool,
    /// Do not answer the browser and OS canaries (use-application-dns.net, mask.icloud.com,
    /// mask-h2.icloud.com, resolver.arpa) in the kernel.
    #[arg(long)]
    pub no_canaries: bool,
}

impl ListArgs {
    pub fn plan(&self) -> ListPlan {
        ListPlan {
            blocklists: self.blocklists.clone(),
            allowlists: self.allowlists.clone(),
            format: self.format,
            subdomains: self.subdomains,
            strict: self.strict,
            canaries: !self.no_canaries,
        }
    }
}

#[derive(clap::Args, Clone)]
pub struct AttachArgs {
    /// The LAN-facing interface, where client queries arrive.
    pub iface: String,
    #[command(flatten)]
    pub lists: ListArgs,
    /// What a blocked name gets: nxdomain, nodata, null (0.0.0.0 and ::), refused, or the
    /// address(es) of a block page, e.g. 198.18.0.10,2001:db8::10.
    #[arg(long, value_name = "MODE", default_value = "nxdomain")]
    pub response: Response,
    /// TTL in seconds of answers, and of negative answers (through the SOA).
    #[arg(long, value_name = "SECS", default_value_t = default::TTL)]
    pub ttl: u32,
    /// Where the program runs.
    #[arg(long, value_enum, default_value_t = bpf::Mode::Auto)]
    pub mode: bpf::Mode,
    /// An internal resolver (repeatable, IPv4 or IPv6). Given any, DNS from the clients to
    /// any other address is dropped (UDP and TCP port 53), unless its name is answered here.
    #[arg(long = "resolver", value_name = "ADDR")]
    pub resolvers: Vec<std::net::IpAddr>,
    /// Drop traffic to this port (repeatable), e.g. tcp/5222. DNS over TLS (tcp/853) and over
    /// QUIC (udp/853) are always dropped.
    #[arg(long = "block-port", value_name = "PROTO/PORT")]
    pub block_ports: Vec<Port>,
    /// Drop traffic to the destinations in this file (repeatable): one CIDR a line, with
    /// `any` or the ports it covers (`216.239.37.125 tcp/5222,tcp/5223`).
    #[arg(long = "block-ip", value_name = "FILE")]
    pub block_ips: Vec<PathBuf>,
    /// Answer only queries from this network (repeatable; `any` for every source). By
    /// default, the subnets of the interface (and of its VLANs, IFACE.N), read at attach
    /// time. A blocked name asked from another source is dropped: answering spoofed queries
    /// would make the gateway a reflector.
    #[arg(long = "clients", value_name = "CIDR", value_parser = plan::parse_clients)]
    pub clients: Vec<ipnet::IpNet>,
    /// Pass DNS queries that dnssink cannot parse (a compression pointer in the question,
    /// several questions, a malformed name, a fragment...) to the resolver instead of
    /// dropping them. Such a query could carry a blocked name past the sinkhole, so they are
    /// dropped by default. Messages that are not queries (responses, UPDATE, NOTIFY) always
    /// pass.
    #[arg(long)]
    pub pass_unparsed: bool,
    /// When the daemon stops (or dies): `detach` removes the program; `keep` leaves it
    /// filtering with the last rules, and the next start takes it over with no gap.
    #[arg(long, value_enum, default_value_t = OnExit::Detach)]
    pub on_exit: OnExit,
    /// Log passed and allowed queries too, not only answered ones.
    #[arg(long, conflicts_with = "no_log")]
    pub log_all: bool,
    /// Log no queries.
    #[arg(long)]
    pub no_log: bool,
    /// Size of the kernel's query-log buffer in KiB (a power of two, at least 4). When it is
    /// full, events are dropped and counted; answers never wait.
    #[arg(long, value_name = "KIB", default_value_t = default::LOG_BUFFER_KIB, value_parser = plan::parse_log_buffer)]
    pub log_buffer: u32,
    /// How many recent queries the daemon keeps for `dnssink log` and `dnssink top`.
    #[arg(long, value_name = "N", default_value_t = default::LOG_WINDOW)]
    pub log_window: usize,
    /// Mask client addresses in the log to their /24 (IPv4) or /56 (IPv6).
    #[arg(long)]
    pub anonymize_clients: bool,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
}

impl AttachArgs {
    /// The plan of `dnssink attach ARGS`, from ARGS (the interface first).
    pub fn parse_plan(args: &[&str]) -> Result<Plan> {
        let argv = ["dnssink", "attach"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv)?.command {
            Command::Attach(a) => a.plan(),
            _ => unreachable!("parsed as attach"),
        }
    }

    /// The plan this command line gives.
    pub fn plan(&self) -> Result<Plan> {
        let plan = Plan {
            iface: self.iface.clone(),
            lists: self.lists.plan(),
            response: self.response,
            ttl: self.ttl,
            mode: self.mode,
            resolvers: self.resolvers.clone(),
            block_ports: self.block_ports.clone(),
            block_ips: self.block_ips.clone(),
            clients: self.clients.clone(),
            pass_unparsed: self.pass_unparsed,
            on_exit: self.on_exit,
            log: plan::LogLevel::from_switches(self.log_all, self.no_log)?,
            log_buffer_kib: self.log_buffer,
            log_window: self.log_window,
            anonymize_clients: self.anonymize_clients,
        };
        plan.check()?;
        Ok(plan)
    }
}

#[derive(clap::Args)]
pub struct QueryArgs {
    /// Names to look up.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// The instance to ask, when several are attached.
    #[arg(long)]
    pub iface: Option<String>,
    #[command(flatten)]
    pub lists: ListArgs,
}

#[derive(clap::Args)]
pub struct LogArgs {
    /// The interface; optional when only one is attached.
    pub iface: Option<String>,
    /// Keep printing new queries as they come.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Only clients in this network (e.g. 198.18.0.0/24, or one address).
    #[arg(long, value_name = "CIDR", value_parser = plan::parse_cidr)]
    pub client: Option<ipnet::IpNet>,
    /// Only this name and its subdomains.
    #[arg(long, value_name = "SUFFIX")]
    pub name: Option<String>,
}

//! The command line: every command and option, shared by the `dnssink` binary, the config
//! file (whose keys are the long options of `attach`) and `cargo xtask dist` (man page and
//! completions).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};
use dnssink_common::{config::Config, event::level};

use crate::{
    ListSpec, bpf, iplist,
    lists::{Format, Options, Role},
    response,
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
    pub fn specs(&self) -> Vec<ListSpec> {
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

    pub fn load(&self) -> Result<crate::Loaded> {
        crate::load_lists(&self.specs(), self.strict, !self.no_canaries)
    }
}

/// What happens to the program when the daemon stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnExit {
    /// Remove it: the interface goes back to plain forwarding.
    Detach,
    /// Leave it attached, pinned, filtering with the last rules; the next start adopts it.
    Keep,
}

#[derive(clap::Args, Clone)]
pub struct AttachArgs {
    /// The LAN-facing interface, where client queries arrive.
    pub iface: String,
    #[command(flatten)]
    pub lists: ListArgs,
    /// What a blocked name gets: nxdomain, nodata, null (0.0.0.0 and ::), refused, or the
    /// address(es) of a block page, e.g. 198.18.0.10,2001:db8::10.
    #[arg(long, value_name = "MODE", default_value = "nxdomain", value_parser = response::parse)]
    pub response: Config,
    /// TTL in seconds of answers, and of negative answers (through the SOA).
    #[arg(long, value_name = "SECS", default_value_t = Config::DEFAULT_TTL)]
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
    #[arg(long = "block-port", value_name = "PROTO/PORT", value_parser = iplist::parse_port)]
    pub block_ports: Vec<(u8, u16)>,
    /// Drop traffic to the destinations in this file (repeatable): one CIDR a line, with
    /// `any` or the ports it covers (`216.239.37.125 tcp/5222,tcp/5223`).
    #[arg(long = "block-ip", value_name = "FILE")]
    pub block_ips: Vec<PathBuf>,
    /// Answer only queries from this network (repeatable; `any` for every source). By
    /// default, the subnets of the interface (and of its VLANs, IFACE.N), read at attach
    /// time. A blocked name asked from another source is dropped: answering spoofed queries
    /// would make the gateway a reflector.
    #[arg(long = "clients", value_name = "CIDR", value_parser = parse_clients)]
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
    #[arg(long, value_name = "KIB", default_value_t = 256, value_parser = parse_log_buffer)]
    pub log_buffer: u32,
    /// How many recent queries the daemon keeps for `dnssink log` and `dnssink top`.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub log_window: usize,
    /// Mask client addresses in the log to their /24 (IPv4) or /56 (IPv6).
    #[arg(long)]
    pub anonymize_clients: bool,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
}

fn parse_log_buffer(s: &str) -> std::result::Result<u32, String> {
    let kib: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if kib < 4 || !kib.is_power_of_two() || kib > 1 << 20 {
        return Err(format!(
            "{kib} KiB: the buffer must be a power of two from 4 KiB to 1 GiB"
        ));
    }
    Ok(kib)
}

impl AttachArgs {
    pub fn ip_rules(&self) -> Result<iplist::IpRules> {
        let mut rules = iplist::IpRules::default();
        for f in &self.block_ips {
            rules.load(f)?;
        }
        Ok(rules)
    }

    /// Checks what the command line cannot: that the sets fit their maps. Run before anything
    /// touches the kernel, so that a bad set never leaves a rule set half applied.
    pub fn check(&self) -> Result<()> {
        use dnssink_common::maps;
        let fits = |flag: &str, n: usize, max: usize| {
            if n > max {
                anyhow::bail!("{flag}: at most {max} may be given ({n} were)");
            }
            Ok(())
        };
        fits(
            "--resolver",
            self.resolvers.len(),
            maps::RESOLVERS_MAX as usize,
        )?;
        fits(
            "--block-port",
            self.block_ports.len(),
            maps::PORTS_MAX as usize,
        )?;
        fits("--clients", self.clients.len(), maps::CLIENTS_MAX)
    }

    pub fn config(&self, ip_rules: &iplist::IpRules) -> Config {
        let mut c = self.response;
        c.ttl = self.ttl;
        c.enforce = !self.resolvers.is_empty() as u8;
        c.policy = (c.enforce != 0 || !ip_rules.is_empty() || !self.block_ports.is_empty()) as u8;
        c.clients = 1;
        c.pass_unparsed = self.pass_unparsed as u8;
        c.log = if self.no_log {
            level::OFF
        } else if self.log_all {
            level::ALL
        } else {
            level::ANSWERED
        };
        c
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
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub client: Option<ipnet::IpNet>,
    /// Only this name and its subdomains.
    #[arg(long, value_name = "SUFFIX")]
    pub name: Option<String>,
}

fn parse_clients(s: &str) -> std::result::Result<ipnet::IpNet, String> {
    if s == "any" {
        return Ok("::/0".parse().expect("a valid network"));
    }
    parse_cidr(s)
}

pub fn parse_cidr(s: &str) -> std::result::Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or a CIDR network"))
}

impl Cli {
    /// The arguments of `dnssink attach`, from its argument list (without the program name).
    pub fn attach_args(args: &[String]) -> Result<AttachArgs, clap::Error> {
        let argv = std::iter::once("dnssink".to_string()).chain(args.iter().cloned());
        match Cli::try_parse_from(argv)?.command {
            Command::Attach(a) => Ok(a),
            _ => Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidSubcommand,
                "not an attach command",
            )),
        }
    }
}

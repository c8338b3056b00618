//! What one attached interface is to do: the typed plan that the command line (`attach`) and
//! the config file (`run`) both produce, that the daemon runs, that the state file keeps for
//! `reload` and `query`, and that tests build their kernel configs from. The kernel's flags
//! are made here and nowhere else ([`Plan::settings`]).

use std::{fmt, net::IpAddr, path::PathBuf, str::FromStr};

use anyhow::{Result, bail};
use dnssink_common::{config::Config, event::level, maps as limits};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{
    ListSpec, Loaded,
    bpf::Mode,
    iplist::{self, IpRules},
    lists::{Format, Options, Role},
    response::Response,
};

/// The defaults, for the command line and the config file alike.
pub mod default {
    pub const TTL: u32 = dnssink_common::config::Config::DEFAULT_TTL;
    pub const LOG_BUFFER_KIB: u32 = 256;
    pub const LOG_WINDOW: usize = 10_000;
}

/// What happens to the program when the daemon stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExit {
    /// Remove it: the interface goes back to plain forwarding.
    #[default]
    Detach,
    /// Leave it attached, pinned, filtering with the last rules; the next start adopts it.
    Keep,
}

impl fmt::Display for OnExit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            OnExit::Detach => "detach",
            OnExit::Keep => "keep",
        })
    }
}

/// Which queries the query log gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Off,
    /// The queries the kernel answered (the default).
    #[default]
    Answered,
    /// Passed and allowed queries too.
    All,
}

impl LogLevel {
    pub const fn kernel(self) -> u8 {
        match self {
            LogLevel::Off => level::OFF,
            LogLevel::Answered => level::ANSWERED,
            LogLevel::All => level::ALL,
        }
    }

    /// From the two switches `--log-all` and `--no-log`.
    pub fn from_switches(all: bool, none: bool) -> Result<LogLevel> {
        match (all, none) {
            (true, true) => bail!("log-all and no-log cannot both be given"),
            (true, false) => Ok(LogLevel::All),
            (false, true) => Ok(LogLevel::Off),
            (false, false) => Ok(LogLevel::Answered),
        }
    }
}

/// A blocked port, `PROTO/PORT` (`tcp/5222`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    pub proto: u8,
    pub port: u16,
}

impl FromStr for Port {
    type Err = String;
    fn from_str(s: &str) -> Result<Port, String> {
        iplist::parse_port(s).map(|(proto, port)| Port { proto, port })
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.proto {
            dnssink_common::policy::PROTO_TCP => write!(f, "tcp/{}", self.port),
            dnssink_common::policy::PROTO_UDP => write!(f, "udp/{}", self.port),
            p => write!(f, "{p}/{}", self.port),
        }
    }
}

/// `--clients`: a network, or `any` for every source.
pub fn parse_clients(s: &str) -> Result<IpNet, String> {
    if s == "any" {
        return Ok(IpNet::V6(ipnet::Ipv6Net::default()));
    }
    parse_cidr(s)
}

/// A network, or one address.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or a CIDR network"))
}

/// `--log-buffer`: KiB, a power of two from 4 KiB to 1 GiB.
pub fn parse_log_buffer(s: &str) -> Result<u32, String> {
    let kib: u32 = s.parse().map_err(|e| format!("{e}"))?;
    check_log_buffer(kib)?;
    Ok(kib)
}

fn check_log_buffer(kib: u32) -> Result<(), String> {
    if kib < 4 || !kib.is_power_of_two() || kib > 1 << 20 {
        return Err(format!(
            "{kib} KiB: the buffer must be a power of two from 4 KiB to 1 GiB"
        ));
    }
    Ok(())
}

/// The lists and how to read them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPlan {
    pub blocklists: Vec<PathBuf>,
    pub allowlists: Vec<PathBuf>,
    /// Every list in this format instead of detecting it.
    pub format: Option<Format>,
    /// Exact entries of hosts and domain lists cover their subdomains too.
    pub subdomains: bool,
    /// Any line that gives no rule is an error.
    pub strict: bool,
    /// The browser and OS canaries are answered in the kernel.
    pub canaries: bool,
}

impl ListPlan {
    pub fn specs(&self) -> Vec<ListSpec> {
        let spec = |role| {
            move |p: &PathBuf| ListSpec {
                path: p.clone(),
                opts: Options {
                    role,
                    format: self.format,
                    subdomains: self.subdomains,
                },
            }
        };
        let block = self.blocklists.iter().map(spec(Role::Block));
        let allow = self.allowlists.iter().map(spec(Role::Allow));
        block.chain(allow).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.blocklists.is_empty() && self.allowlists.is_empty()
    }

    /// Reads and compiles every list.
    pub fn load(&self) -> Result<Loaded> {
        crate::load_lists(&self.specs(), self.strict, self.canaries)
    }
}

/// One interface's plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub iface: String,
    pub lists: ListPlan,
    #[serde(with = "as_string")]
    pub response: Response,
    pub ttl: u32,
    pub mode: Mode,
    /// The internal resolvers: given any, DNS to any other is dropped.
    pub resolvers: Vec<IpAddr>,
    #[serde(with = "as_strings")]
    pub block_ports: Vec<Port>,
    pub block_ips: Vec<PathBuf>,
    /// The networks answered; empty for the interface's own subnets.
    #[serde(with = "as_strings")]
    pub clients: Vec<IpNet>,
    pub pass_unparsed: bool,
    pub on_exit: OnExit,
    pub log: LogLevel,
    pub log_buffer_kib: u32,
    pub log_window: usize,
    pub anonymize_clients: bool,
}

/// What the kernel's small maps and its config get, built whole from a plan and what the
/// host says, before anything is written ([`crate::bpf::Sinkhole::fill`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub resolvers: Vec<IpAddr>,
    pub ports: Vec<(u8, u16)>,
    pub clients: Vec<IpNet>,
    pub config: Config,
}

/// What the host says about the interface, for [`Plan::settings`].
#[derive(Clone, Debug, Default)]
pub struct HostView {
    /// The gateway's own addresses on the interface: internal resolvers too.
    pub addresses: Vec<IpAddr>,
    /// Its subnets: the default clients.
    pub subnets: Vec<IpNet>,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan::new("")
    }
}

impl Plan {
    /// A plan for `iface` with every default (and no list).
    pub fn new(iface: &str) -> Plan {
        Plan {
            iface: iface.to_string(),
            lists: ListPlan {
                canaries: true,
                ..ListPlan::default()
            },
            response: Response::default(),
            ttl: default::TTL,
            mode: Mode::Auto,
            resolvers: Vec::new(),
            block_ports: Vec::new(),
            block_ips: Vec::new(),
            clients: Vec::new(),
            pass_unparsed: false,
            on_exit: OnExit::Detach,
            log: LogLevel::Answered,
            log_buffer_kib: default::LOG_BUFFER_KIB,
            log_window: default::LOG_WINDOW,
            anonymize_clients: false,
        }
    }

    /// Checks what the parsers cannot: that the sets fit their maps. Run before anything
    /// touches the kernel, so that a bad set never leaves a rule set half applied.
    pub fn check(&self) -> Result<()> {
        let fits = |flag: &str, n: usize, max: usize| {
            if n > max {
                bail!("{flag}: at most {max} may be given ({n} were)");
            }
            Ok(())
        };
        fits(
            "--resolver",
            self.resolvers.len(),
            limits::RESOLVERS_MAX as usize,
        )?;
        fits(
            "--block-port",
            self.block_ports.len(),
            limits::PORTS_MAX as usize,
        )?;
        fits("--clients", self.clients.len(), limits::CLIENTS_MAX)?;
        check_log_buffer(self.log_buffer_kib).map_err(anyhow::Error::msg)
    }

    /// The blocked destinations, read from the `--block-ip` files.
    pub fn ip_rules(&self) -> Result<IpRules> {
        let mut rules = IpRules::default();
        for f in &self.block_ips {
            rules.load(f)?;
        }
        Ok(rules)
    }

    /// The kernel's config and small maps: the only place their flags are made.
    pub fn settings(&self, ip_rules: &IpRules, host: &HostView) -> Result<Settings> {
        let mut c = self.response.0;
        c.ttl = self.ttl;
        c.enforce = !self.resolvers.is_empty() as u8;
        c.policy = (c.enforce != 0 || !ip_rules.is_empty() || !self.block_ports.is_empty()) as u8;
        c.clients = 1;
        c.pass_unparsed = self.pass_unparsed as u8;
        c.log = self.log.kernel();
        Ok(Settings {
            resolvers: self.internal_resolvers(&host.addresses),
            ports: self.block_ports.iter().map(|p| (p.proto, p.port)).collect(),
            clients: self.clients_or(&host.subnets)?,
            config: c,
        })
    }

    /// The clients given, or the interface's subnets.
    fn clients_or(&self, subnets: &[IpNet]) -> Result<Vec<IpNet>> {
        if !self.clients.is_empty() {
            return Ok(self.clients.clone());
        }
        // A link-local network alone (every IPv6 link has one) is not a LAN's.
        let link_local = |n: &IpNet| match n {
            IpNet::V6(v6) => v6.addr().segments()[0] & 0xffc0 == 0xfe80,
            IpNet::V4(_) => false,
        };
        if subnets.iter().all(link_local) {
            bail!(
                "{} has no IP address to take the client networks from: give them with \
                 --clients CIDR (or --clients any)",
                self.iface
            );
        }
        Ok(subnets.to_vec())
    }

    /// The internal resolvers: none without `--resolver` (DNS may go anywhere); else those
    /// given, and every address of the gateway itself on the interface (link-local included),
    /// so that clients that learned the router's address from its advertisements are not cut
    /// off.
    pub fn internal_resolvers(&self, own: &[IpAddr]) -> Vec<IpAddr> {
        if self.resolvers.is_empty() {
            return Vec::new();
        }
        let mut out = self.resolvers.clone();
        let max = limits::RESOLVERS_MAX as usize;
        for &a in own {
            if out.contains(&a) {
                continue;
            }
            if out.len() == max {
                tracing::warn!(
                    "{}: room for {max} internal resolvers only; {a} is not one",
                    self.iface
                );
                continue;
            }
            out.push(a);
        }
        out
    }

    /// What is dropped, in a few words.
    pub fn policy_summary(&self, ip_rules: &IpRules) -> String {
        let resolvers = if self.resolvers.is_empty() {
            "DNS to any resolver".to_string()
        } else {
            let r: Vec<String> = self.resolvers.iter().map(|a| a.to_string()).collect();
            format!("DNS only to {}", r.join(", "))
        };
        let s = |n: usize| if n == 1 { "" } else { "s" };
        format!(
            "{resolvers}; dropping DoT/DoQ, {} port{}, {} blocked destination{}",
            self.block_ports.len(),
            s(self.block_ports.len()),
            ip_rules.len(),
            s(ip_rules.len()),
        )
    }
}

/// A value kept as its text (`Display` and `FromStr`), as the command line gives it.
mod as_string {
    use std::{fmt::Display, str::FromStr};

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// Values kept as their texts.
mod as_strings {
    use std::{fmt::Display, str::FromStr};

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<T: Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.to_string()))
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(D::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_flags_follow_the_plan() {
        let host = HostView {
            addresses: vec!["198.18.0.1".parse().unwrap()],
            subnets: vec!["198.18.0.0/24".parse().unwrap()],
        };
        let mut p = Plan::new("eth1");
        let s = p.settings(&IpRules::default(), &host).unwrap();
        assert_eq!(
            (s.config.enforce, s.config.policy, s.config.clients),
            (0, 0, 1)
        );
        assert_eq!(s.config.log, level::ANSWERED);
        assert!(s.resolvers.is_empty());
        assert_eq!(s.clients, host.subnets);
        p.resolvers = vec!["198.18.0.53".parse().unwrap()];
        p.log = LogLevel::Off;
        p.pass_unparsed = true;
        let s = p.settings(&IpRules::default(), &host).unwrap();
        assert_eq!((s.config.enforce, s.config.policy), (1, 1));
        assert_eq!((s.config.log, s.config.pass_unparsed), (level::OFF, 1));
        assert_eq!(
            s.resolvers.len(),
            2,
            "the gateway's own address is a resolver too"
        );
        p.resolvers.clear();
        p.block_ports = vec!["tcp/5222".parse().unwrap()];
        let s = p.settings(&IpRules::default(), &host).unwrap();
        assert_eq!((s.config.enforce, s.config.policy), (0, 1));
        let bare = HostView::default();
        let e = p.settings(&IpRules::default(), &bare).unwrap_err();
        assert!(format!("{e}").contains("--clients"), "{e}");
    }

    #[test]
    fn a_plan_survives_the_state_file() {
        let mut p = Plan::new("eth1");
        p.response = "198.18.0.10,2001:db8::10".parse().unwrap();
        p.block_ports = vec!["udp/443".parse().unwrap()];
        p.clients = vec![
            parse_clients("any").unwrap(),
            "198.18.0.0/15".parse().unwrap(),
        ];
        p.lists.blocklists = vec!["/a".into()];
        p.lists.format = Some(Format::Hosts);
        p.on_exit = OnExit::Keep;
        let text = serde_json::to_string(&p).unwrap();
        assert!(
            text.contains("\"udp/443\"") && text.contains("\"keep\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), p);
    }
}

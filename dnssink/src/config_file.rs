//! `dnssink run --config FILE`: a TOML file whose keys are the long options of `attach`.
//!
//! ```toml
//! metrics = "127.0.0.1:9153"        # the daemon's, top level only
//! blocklist = ["/etc/dnssink/ads"]  # other top-level keys are defaults for every interface
//!
//! [[interface]]
//! name = "eth1"
//! resolver = ["192.168.1.1"]
//! response = "null"
//! ```
//!
//! Each interface's keys, over the top-level defaults, are read through serde into
//! [`Options`] and become a [`Plan`], as the command line's `attach` does: a key is checked
//! alone first, so that an unknown key or a bad value is an error that names the file, the
//! interface and the key.

use std::{net::IpAddr, net::SocketAddr, path::Path, path::PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::CommandFactory as _;
use serde::{Deserialize, Deserializer, de::Error as _};

use crate::{
    bpf::Mode,
    cli::Cli,
    lists::Format,
    plan::{self, LogLevel, OnExit, Plan, Port},
    response::Response,
};

/// A config file, read and checked.
#[derive(Debug)]
pub struct FileConfig {
    pub metrics: Option<SocketAddr>,
    pub interfaces: Vec<Plan>,
}

/// An interface's keys: the long options of `attach`, each optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Options {
    blocklist: Option<Many<PathBuf>>,
    allowlist: Option<Many<PathBuf>>,
    format: Option<Format>,
    subdomains: Option<bool>,
    strict: Option<bool>,
    no_canaries: Option<bool>,
    response: Option<Parsed<Response>>,
    ttl: Option<u32>,
    mode: Option<Mode>,
    resolver: Option<Many<IpAddr>>,
    block_port: Option<Many<Parsed<Port>>>,
    block_ip: Option<Many<PathBuf>>,
    clients: Option<Many<Clients>>,
    pass_unparsed: Option<bool>,
    on_exit: Option<OnExit>,
    log_all: Option<bool>,
    no_log: Option<bool>,
    log_buffer: Option<u32>,
    log_window: Option<usize>,
    anonymize_clients: Option<bool>,
}

/// One value, or a list of them.
#[derive(Debug)]
struct Many<T>(Vec<T>);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::Array(a) => a
                .into_iter()
                .map(|v| T::deserialize(v).map_err(D::Error::custom))
                .collect::<Result<_, _>>()
                .map(Many),
            v => T::deserialize(v)
                .map(|x| Many(vec![x]))
                .map_err(D::Error::custom),
        }
    }
}

/// A value read from its text, with the command line's parser.
#[derive(Debug)]
struct Parsed<T>(T);

impl<'de, T: std::str::FromStr<Err = String>> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map(Parsed)
            .map_err(D::Error::custom)
    }
}

/// `clients`: a network, or `any`.
#[derive(Debug)]
struct Clients(ipnet::IpNet);

impl<'de> Deserialize<'de> for Clients {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        plan::parse_clients(&String::deserialize(d)?)
            .map(Clients)
            .map_err(D::Error::custom)
    }
}

impl Options {
    /// The plan for `iface`: these keys over the defaults.
    fn plan(self, iface: &str) -> Result<Plan> {
        let mut p = Plan::new(iface);
        let l = &mut p.lists;
        let many = |m: Option<Many<PathBuf>>| m.map(|m| m.0).unwrap_or_default();
        l.blocklists = many(self.blocklist);
        l.allowlists = many(self.allowlist);
        l.format = self.format;
        l.subdomains = self.subdomains.unwrap_or(false);
        l.strict = self.strict.unwrap_or(false);
        l.canaries = !self.no_canaries.unwrap_or(false);
        if let Some(r) = self.response {
            p.response = r.0;
        }
        p.ttl = self.ttl.unwrap_or(p.ttl);
        p.mode = self.mode.unwrap_or(p.mode);
        p.resolvers = self.resolver.map(|m| m.0).unwrap_or_default();
        p.block_ports = self
            .block_port
            .map(|m| m.0.into_iter().map(|x| x.0).collect())
            .unwrap_or_default();
        p.block_ips = many(self.block_ip);
        p.clients = self
            .clients
            .map(|m| m.0.into_iter().map(|x| x.0).collect())
            .unwrap_or_default();
        p.pass_unparsed = self.pass_unparsed.unwrap_or(false);
        p.on_exit = self.on_exit.unwrap_or(p.on_exit);
        p.log =
            LogLevel::from_switches(self.log_all.unwrap_or(false), self.no_log.unwrap_or(false))?;
        p.log_buffer_kib = self.log_buffer.unwrap_or(p.log_buffer_kib);
        p.log_window = self.log_window.unwrap_or(p.log_window);
        p.anonymize_clients = self.anonymize_clients.unwrap_or(false);
        p.check()?;
        Ok(p)
    }
}

/// Reads and checks `path`; does not read the lists.
pub fn load(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{}", path.display()))
}

pub fn parse(text: &str) -> Result<FileConfig> {
    let mut top: toml::Table = text.parse().map_err(|e: toml::de::Error| anyhow!("{e}"))?;
    let metrics = match top.remove("metrics") {
        None => None,
        Some(toml::Value::String(s)) => Some(
            s.parse()
                .map_err(|_| anyhow!("key `metrics`: {s:?} is not an ADDR:PORT"))?,
        ),
        Some(v) => bail!("key `metrics`: expected a string like \"127.0.0.1:9153\", not {v}"),
    };
    let interfaces = match top.remove("interface") {
        Some(toml::Value::Array(a)) => a,
        Some(_) => bail!("key `interface`: expected [[interface]] tables"),
        None => bail!("no [[interface]]: give at least one, with its `name`"),
    };
    let mut out: Vec<Plan> = Vec::new();
    for (i, v) in interfaces.into_iter().enumerate() {
        let toml::Value::Table(mut t) = v else {
            bail!("[[interface]] {}: expected a table", i + 1);
        };
        let name = match t.remove("name") {
            Some(toml::Value::String(s)) => s,
            Some(_) => bail!("[[interface]] {}: key `name` must be a string", i + 1),
            None => bail!("[[interface]] {}: no `name` (the interface)", i + 1),
        };
        if out.iter().any(|p| p.iface == name) {
            bail!("[[interface]] {name:?} is given twice");
        }
        if t.contains_key("metrics") {
            bail!("[[interface]] {name:?}: key `metrics` belongs at the top level");
        }
        let mut merged = top.clone();
        merged.extend(t);
        let plan =
            interface_plan(&name, merged).with_context(|| format!("[[interface]] {name:?}"))?;
        out.push(plan);
    }
    Ok(FileConfig {
        metrics,
        interfaces: out,
    })
}

/// The plan of `iface` from its keys, each key checked alone so that an error names it.
fn interface_plan(iface: &str, t: toml::Table) -> Result<Plan> {
    for (key, value) in &t {
        let one = toml::Table::from_iter([(key.clone(), value.clone())]);
        if let Err(e) = Options::deserialize(toml::Value::Table(one)) {
            let msg = e.to_string();
            if msg.contains("unknown field") {
                bail!("unknown key `{key}`{}", hint(key));
            }
            bail!("key `{key}`: {}", msg.trim());
        }
    }
    Options::deserialize(toml::Value::Table(t))
        .map_err(|e| anyhow!("{}", e.to_string().trim()))?
        .plan(iface)
}

/// A did-you-mean for an unknown key: the long option of `attach` it is closest to.
fn hint(key: &str) -> String {
    if key.replace('_', "-") == "drop-unparsed" {
        return " (unparsed queries are dropped by default now: remove it, or give \
                `pass-unparsed` for the old behaviour)"
            .to_string();
    }
    let cmd = Cli::command();
    let longs: Vec<String> = cmd
        .find_subcommand("attach")
        .map(|a| {
            a.get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    longs
        .iter()
        .find(|l| l.replace('-', "_") == key.replace('-', "_"))
        .map(|l| format!(" (did you mean `{l}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).expect_err("an error"))
    }

    #[test]
    fn defaults_and_interfaces() {
        let c = parse(
            r#"
            metrics = "127.0.0.1:9153"
            blocklist = ["/a", "/b"]
            ttl = 60
            [[interface]]
            name = "eth1"
            resolver = ["192.0.2.1", "2001:db8::1"]
            log-all = true
            [[interface]]
            name = "eth2"
            ttl = 5
            on-exit = "keep"
            "#,
        )
        .unwrap();
        assert_eq!(c.metrics.unwrap().to_string(), "127.0.0.1:9153");
        let a = &c.interfaces[0];
        assert_eq!(a.iface, "eth1");
        assert_eq!(a.lists.blocklists.len(), 2);
        assert_eq!(a.resolvers.len(), 2);
        assert_eq!(a.ttl, 60);
        assert_eq!(a.log, LogLevel::All);
        let b = &c.interfaces[1];
        assert_eq!(b.ttl, 5);
        assert_eq!(b.on_exit, OnExit::Keep);
    }

    /// The file and the command line give the same plan for the same options.
    #[test]
    fn the_file_and_the_command_line_agree() {
        use clap::Parser as _;
        let file = parse(
            r#"
            [[interface]]
            name = "eth1"
            blocklist = "/a"
            allowlist = ["/b"]
            response = "198.18.0.10"
            block-port = ["tcp/5222", "udp/443"]
            clients = ["any"]
            resolver = "198.18.0.53"
            no-log = true
            subdomains = true
            mode = "generic"
            log-buffer = 64
            "#,
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "dnssink",
            "attach",
            "eth1",
            "--blocklist",
            "/a",
            "--allowlist",
            "/b",
            "--response",
            "198.18.0.10",
            "--block-port",
            "tcp/5222",
            "--block-port",
            "udp/443",
            "--clients",
            "any",
            "--resolver",
            "198.18.0.53",
            "--no-log",
            "--subdomains",
            "--mode",
            "generic",
            "--log-buffer",
            "64",
        ])
        .unwrap();
        let crate::cli::Command::Attach(args) = cli.command else {
            panic!("not attach")
        };
        assert_eq!(file.interfaces[0], args.plan().unwrap());
        let bare = parse("[[interface]]\nname = \"eth1\"\n").unwrap();
        let cli = Cli::try_parse_from(["dnssink", "attach", "eth1"]).unwrap();
        let crate::cli::Command::Attach(args) = cli.command else {
            panic!("not attach")
        };
        assert_eq!(
            bare.interfaces[0],
            args.plan().unwrap(),
            "the same defaults"
        );
    }

    /// Every long option of `attach` is a key of the file (but `metrics`, which is the
    /// daemon's, and is a top-level key).
    #[test]
    fn every_option_is_a_key() {
        let cmd = Cli::command();
        let attach = cmd.find_subcommand("attach").unwrap();
        for long in attach.get_arguments().filter_map(|a| a.get_long()) {
            if matches!(long, "metrics" | "help") {
                continue;
            }
            let e = err(&format!("[[interface]]\nname = \"eth1\"\n{long} = {{}}\n"));
            assert!(!e.contains("unknown key"), "{long}: {e}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = err("[[interface]]\nname = \"eth1\"\nblocklist = \"/a\"\nttll = 3\n");
        assert!(e.contains("unknown key `ttll`"), "{e}");
        let e = err("[[interface]]\nname = \"eth1\"\nblock_port = \"tcp/1\"\n");
        assert!(e.contains("did you mean `block-port`"), "{e}");
        let e = err("[[interface]]\nname = \"eth1\"\ndrop-unparsed = true\n");
        assert!(e.contains("dropped by default now"), "{e}");
        let e = err("[[interface]]\nname = \"eth1\"\nttl = \"soon\"\n");
        assert!(e.contains("key `ttl`") && e.contains("soon"), "{e}");
        let e = err("[[interface]]\nname = \"eth1\"\nresponse = \"maybe\"\n");
        assert!(e.contains("key `response`"), "{e}");
        let e = err("[[interface]]\nname = \"eth1\"\nstrict = 1\n");
        assert!(e.contains("key `strict`") && e.contains("bool"), "{e}");
        let e = err("metrics = \"nowhere\"\n[[interface]]\nname = \"eth1\"\n");
        assert!(e.contains("key `metrics`"), "{e}");
        let e = err("[[interface]]\nname = \"eth1\"\nmetrics = \"127.0.0.1:1\"\n");
        assert!(e.contains("top level"), "{e}");
        let e = err("[[interface]]\nname = \"a\"\n[[interface]]\nname = \"a\"\n");
        assert!(e.contains("twice"), "{e}");
        let many: Vec<String> = (0..65).map(|i| format!("\"192.0.2.{i}\"")).collect();
        let e = err(&format!(
            "[[interface]]\nname = \"eth1\"\nresolver = [{}]\n",
            many.join(", ")
        ));
        assert!(
            e.contains("--resolver: at most 64 may be given (65 were)"),
            "{e}"
        );
        let e = err("ttl = 3\n");
        assert!(e.contains("no [[interface]]"), "{e}");
        let e = err("[[interface]]\nname = \"eth1\"\nttl = 3\nttl = 4\n");
        assert!(e.contains("duplicate key"), "{e}");
    }
}

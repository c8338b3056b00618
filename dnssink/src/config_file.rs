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
//! Each interface becomes the argument list of an `attach`, parsed by the same parser as the
//! command line: every option works, and an unknown key or a bad value is an error that names
//! the file, the interface and the key.

use std::{net::SocketAddr, path::Path};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::CommandFactory as _;

use crate::cli::{AttachArgs, Cli};

/// A config file, read and checked.
pub struct FileConfig {
    pub metrics: Option<SocketAddr>,
    /// Each interface's options, and its `attach` argument list.
    pub interfaces: Vec<(AttachArgs, Vec<String>)>,
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
    let mut out = Vec::new();
    for (i, v) in interfaces.into_iter().enumerate() {
        let toml::Value::Table(mut t) = v else {
            bail!("[[interface]] {}: expected a table", i + 1);
        };
        let name = match t.remove("name") {
            Some(toml::Value::String(s)) => s,
            Some(_) => bail!("[[interface]] {}: key `name` must be a string", i + 1),
            None => bail!("[[interface]] {}: no `name` (the interface)", i + 1),
        };
        if out.iter().any(|(a, _): &(AttachArgs, _)| a.iface == name) {
            bail!("[[interface]] {name:?} is given twice");
        }
        if t.contains_key("metrics") {
            bail!("[[interface]] {name:?}: key `metrics` belongs at the top level");
        }
        let mut merged = top.clone();
        merged.extend(t);
        let argv =
            interface_args(&name, &merged).with_context(|| format!("[[interface]] {name:?}"))?;
        let args = Cli::attach_args(&argv)
            .map_err(|e| anyhow!("[[interface]] {name:?}: {}", first_line(&e)))?;
        args.check()
            .with_context(|| format!("[[interface]] {name:?}"))?;
        out.push((args, argv));
    }
    Ok(FileConfig {
        metrics,
        interfaces: out,
    })
}

/// The `attach` argument list for `iface` with the options in `t`, each key checked alone
/// so that an error names it.
fn interface_args(iface: &str, t: &toml::Table) -> Result<Vec<String>> {
    let cmd = Cli::command();
    let attach = cmd
        .find_subcommand("attach")
        .ok_or_else(|| anyhow!("no attach command"))?;
    let mut argv = vec!["attach".to_string(), iface.to_string()];
    for (key, value) in t {
        let arg = attach
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
            .ok_or_else(|| {
                let hint = attach
                    .get_arguments()
                    .filter_map(|a| a.get_long())
                    .find(|l| l.replace('-', "_") == key.replace('-', "_"))
                    .map(|l| format!(" (did you mean `{l}`?)"))
                    .or_else(|| {
                        (key.replace('_', "-") == "drop-unparsed").then(|| {
                            " (unparsed queries are dropped by default now: remove it, or give \
                             `pass-unparsed` for the old behaviour)"
                                .to_string()
                        })
                    })
                    .unwrap_or_default();
                anyhow!("unknown key `{key}`{hint}")
            })?;
        let mut one = vec!["attach".to_string(), iface.to_string()];
        if arg.get_action().takes_values() {
            let values = match value {
                toml::Value::Array(a) => a.iter().map(scalar).collect::<Result<Vec<_>>>(),
                v => scalar(v).map(|s| vec![s]),
            }
            .with_context(|| format!("key `{key}`"))?;
            for v in values {
                one.push(format!("--{key}={v}"));
            }
        } else {
            match value {
                toml::Value::Boolean(true) => one.push(format!("--{key}")),
                toml::Value::Boolean(false) => {}
                v => bail!("key `{key}`: a switch, give true or false, not {v}"),
            }
        }
        Cli::attach_args(&one).map_err(|e| anyhow!("key `{key}`: {}", first_line(&e)))?;
        argv.extend(one.into_iter().skip(2));
    }
    Ok(argv)
}

fn scalar(v: &toml::Value) -> Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        v => bail!("expected a string or a number, not {v}"),
    })
}

/// clap's message without its usage and help lines.
fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.trim_start_matches("error: ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).err().expect("an error"))
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
        let (a, argv) = &c.interfaces[0];
        assert_eq!(a.iface, "eth1");
        assert_eq!(a.lists.blocklists.len(), 2);
        assert_eq!(a.resolvers.len(), 2);
        assert_eq!(a.ttl, 60);
        assert!(a.log_all);
        assert_eq!(Cli::attach_args(argv).unwrap().ttl, 60);
        let (b, _) = &c.interfaces[1];
        assert_eq!(b.ttl, 5);
        assert_eq!(b.on_exit, crate::cli::OnExit::Keep);
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
        assert!(e.contains("key `strict`: a switch"), "{e}");
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

//! The `dnssink` command.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser as _;
use dnssink::{
    bpf,
    cli::{Cli, Command, LogArgs, QueryArgs},
    config_file, control, daemon, host, pin, qlog,
    state::{self, State},
};

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
        Command::Attach(args) => args
            .plan()
            .and_then(|plan| daemon::run(vec![plan], args.metrics)),
        Command::Run { config } => {
            config_file::load(&config).and_then(|c| daemon::run(c.interfaces, c.metrics))
        }
        Command::CheckConfig { config } => check_config(&config),
        Command::Reload { iface, timeout } => State::reload(&iface, Duration::from_secs(timeout))
            .map(|summary| {
                println!("dnssink: reloaded {iface}: {summary}");
            }),
        Command::Query(args) => query(args),
        Command::Stats { iface, json } => stats(iface, json),
        Command::Status { json } => status(json),
        Command::Detach { iface, timeout } => detach(&iface, Duration::from_secs(timeout)),
        Command::Log(args) => log(args),
        Command::Top {
            iface,
            clients,
            n,
            json,
        } => top(iface, clients, n, json),
    };
    if let Err(e) = result {
        eprintln!("dnssink: error: {e:#}");
        std::process::exit(1);
    }
}

fn check_config(path: &std::path::Path) -> Result<()> {
    let c = config_file::load(path)?;
    for plan in &c.interfaces {
        let here = || format!("{}: [[interface]] {:?}", path.display(), plan.iface);
        if plan.lists.blocklists.is_empty() {
            bail!("{}: no `blocklist`", here());
        }
        let loaded = plan.lists.load().with_context(here)?;
        let ips = plan.ip_rules().with_context(here)?;
        let present = if host::check_interface(&plan.iface).is_ok() {
            ""
        } else {
            " (not present on this machine)"
        };
        println!(
            "{}{present}: {}; {} blocked destinations",
            plan.iface,
            loaded.summary(),
            ips.len()
        );
    }
    if let Some(m) = c.metrics {
        println!("metrics at http://{m}/metrics");
    }
    println!("{}: ok", path.display());
    Ok(())
}

fn query(args: QueryArgs) -> Result<()> {
    let lists = args.lists.plan();
    let lists = if lists.is_empty() {
        State::read(&instance(args.iface)?)?.plan.lists
    } else {
        lists
    };
    let loaded = lists.load()?;
    print!(
        "{}",
        dnssink::query::explain(&loaded, &lists.specs(), &args.names)?
    );
    Ok(())
}

/// The interfaces dnssink is on in this namespace: with a daemon, or kept.
fn instances() -> Result<Vec<String>> {
    let mut found: Vec<String> = state::instances()?
        .into_iter()
        .filter(|i| State::load(i).is_ok_and(|s| state::alive(s.pid)) || kept(i))
        .collect();
    found.sort();
    found.dedup();
    Ok(found)
}

fn kept(iface: &str) -> bool {
    pin::dir(iface).join(pin::LINK).exists()
}

/// The instance a command names, or the one instance in this namespace.
fn instance(iface: Option<String>) -> Result<String> {
    if let Some(i) = iface {
        return Ok(i);
    }
    let mut found = instances()?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no dnssink is attached here"),
        _ => bail!(
            "several instances are attached ({}): name one",
            found.join(", ")
        ),
    }
}

fn stats(iface: Option<String>, json: bool) -> Result<()> {
    let iface = instance(iface)?;
    if !instances()?.contains(&iface) {
        bail!("dnssink is not attached to {iface} here");
    }
    let dir = pin::dir(&iface);
    let counters = bpf::pinned_counters(&dir)
        .with_context(|| format!("no dnssink is attached to {iface} here"))?;
    let get = |n: &str| counters.get(n).copied().unwrap_or(0);
    let answered = get("answered_exact") + get("answered_subtree") + get("answered_canary");
    if json {
        let mut m = serde_json::Map::new();
        m.insert("iface".into(), iface.clone().into());
        m.insert("answered".into(), answered.into());
        for (_, name) in dnssink_common::counters::ALL {
            m.insert(name.to_string(), get(name).into());
        }
        println!("{}", serde_json::Value::Object(m));
        return Ok(());
    }
    println!("{iface}:");
    println!("  {:<34} {answered}", "answered");
    for (_, name) in dnssink_common::counters::ALL {
        println!("  {name:<34} {}", get(name));
    }
    Ok(())
}

fn ago(then: u64) -> String {
    let s = state::now().saturating_sub(then);
    if then == 0 {
        "never".into()
    } else if s < 120 {
        format!("{s}s")
    } else if s < 7200 {
        format!("{}m", s / 60)
    } else if s < 172_800 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86400)
    }
}

fn status(json: bool) -> Result<()> {
    let mut out = Vec::new();
    for iface in instances()? {
        let st = State::load(&iface).unwrap_or_default();
        let running = state::alive(st.pid);
        out.push(serde_json::json!({
            "iface": iface,
            "running": running,
            "pid": st.pid,
            "kept": kept(&iface),
            "on_exit": st.on_exit,
            "mode": st.mode,
            "program_id": st.program_id,
            "uptime_secs": state::now().saturating_sub(st.started),
            "rules": st.rules,
            "loaded_secs_ago": state::now().saturating_sub(st.loaded),
            "reloads": st.reloads,
            "last_reload": st.last_reload,
            "lists": st.lists.iter().map(|l| serde_json::json!({
                "path": l.path, "role": l.role, "format": l.format, "rules": l.rules,
                "modified_secs_ago": state::now().saturating_sub(l.modified),
            })).collect::<Vec<_>>(),
        }));
        if json {
            continue;
        }
        let who = if running {
            format!("running (PID {})", st.pid)
        } else {
            "kept: no daemon, filtering with its last rules".to_string()
        };
        println!(
            "{iface}: {who}; {} mode, program {}, on exit {}",
            st.mode, st.program_id, st.on_exit
        );
        println!(
            "  up {}; {} rules, loaded {} ago; {} reload{}{}",
            ago(st.started),
            st.rules,
            ago(st.loaded),
            st.reloads,
            if st.reloads == 1 { "" } else { "s" },
            if st.last_reload.is_empty() {
                String::new()
            } else {
                format!(", last: {}", st.last_reload)
            }
        );
        for l in &st.lists {
            println!(
                "  {} {} ({}, {} rules, changed {} ago)",
                l.role,
                l.path,
                l.format,
                l.rules,
                ago(l.modified)
            );
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(out));
    } else if out.is_empty() {
        println!("dnssink is not attached to any interface here");
    }
    Ok(())
}

fn detach(iface: &str, timeout: Duration) -> Result<()> {
    let st = State::load(iface).ok();
    let dir = pin::dir(iface);
    if st.is_none() && !dir.exists() {
        bail!("dnssink is not attached to {iface} here");
    }
    if let Some(st) = &st
        && state::alive(st.pid)
    {
        // SAFETY: SIGTERM to the daemon's PID, just checked to exist.
        unsafe { libc::kill(st.pid as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + timeout;
        while state::alive(st.pid) {
            if std::time::Instant::now() > deadline {
                bail!("PID {} did not stop within {timeout:?}", st.pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // A kept program goes with its pinned link; on a kernel without TCX, the TCP program's
    // tc filter is removed by hand.
    pin::remove(&dir)?;
    dnssink::bpf::TcFilter::remove(iface);
    State::remove(iface);
    println!("dnssink: detached from {iface}");
    Ok(())
}

fn log(args: LogArgs) -> Result<()> {
    let iface = instance(args.iface)?;
    let filter = qlog::Filter {
        client: args.client,
        name: args.name,
    };
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    control::read(&state::socket(&iface)?, args.follow, |e| {
        if !filter.matches(&e) {
            return true;
        }
        let line = if args.json {
            serde_json::to_string(&e).unwrap_or_default()
        } else {
            e.columns()
        };
        // A closed pipe (`| head`) ends the log.
        writeln!(stdout, "{line}")
            .and_then(|_| stdout.flush())
            .is_ok()
    })
}

fn top(iface: Option<String>, clients: bool, n: usize, json: bool) -> Result<()> {
    let iface = instance(iface)?;
    let mut entries = Vec::new();
    control::read(&state::socket(&iface)?, false, |e| {
        entries.push(e);
        true
    })?;
    let top = qlog::top(entries.iter(), clients, n);
    let what = if clients { "client" } else { "name" };
    if json {
        let v: Vec<_> = top
            .iter()
            .map(|(k, c)| serde_json::json!({ what: k, "blocked": c }))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!(
        "{:>8}  {what} (blocked, over the last {} queries logged)",
        "count",
        entries.len()
    );
    for (k, c) in top {
        println!("{c:>8}  {k}");
    }
    Ok(())
}

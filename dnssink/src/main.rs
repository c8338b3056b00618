//! The `dnssink` command: parse, then hand over to the daemon (`attach`, `run`) or to one of
//! the commands.

use std::time::Duration;

use anyhow::Result;
use clap::Parser as _;
use dnssink::{
    cli::{Cli, Command},
    commands, config_file, daemon,
    instance::InstanceId,
};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = dispatch(Cli::parse().command) {
        eprintln!("dnssink: error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Attach(args) => daemon::run(vec![args.plan()?], args.metrics),
        Command::Run { config } => {
            let c = config_file::load(&config)?;
            daemon::run(c.interfaces, c.metrics)
        }
        Command::CheckConfig { config } => commands::check::run(&config),
        Command::Reload { iface, timeout } => {
            let id = InstanceId::here(&iface)?;
            id.running()?;
            let summary = daemon::control::reload(&id.socket(), Duration::from_secs(timeout))?;
            println!("dnssink: reloaded {iface}: {summary}");
            Ok(())
        }
        Command::Query(args) => commands::query::run(args),
        Command::Stats { iface, json } => commands::stats::run(iface.as_deref(), json),
        Command::Status { json } => commands::status::run(json),
        Command::Detach { iface, timeout } => {
            commands::detach::run(&iface, Duration::from_secs(timeout))
        }
        Command::Log(args) => commands::log::log(args),
        Command::Top {
            iface,
            clients,
            n,
            json,
        } => commands::log::top(iface.as_deref(), clients, n, json),
    }
}

//! The `dnssink` command.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use dnssink::{bpf, response};
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
    Attach(AttachArgs),
}

#[derive(clap::Args)]
struct AttachArgs {
    /// The LAN-facing interface, where client queries arrive.
    iface: String,
    /// A list of names to block: hosts, plain domains, adblock or wildcard (detected from
    /// content). Repeatable.
    #[arg(long = "blocklist", value_name = "FILE", required = true)]
    blocklists: Vec<PathBuf>,
    /// A list of names never to block, in the same formats. Repeatable.
    #[arg(long = "allowlist", value_name = "FILE")]
    allowlists: Vec<PathBuf>,
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
    };
    if let Err(e) = result {
        eprintln!("dnssink: error: {e:#}");
        std::process::exit(1);
    }
}

fn attach(args: AttachArgs) -> Result<()> {
    bpf::check_interface(&args.iface)?;
    bpf::check_privileges()?;
    let loaded = dnssink::load_lists(&args.blocklists, &args.allowlists)?;
    let mut config = args.response;
    config.ttl = args.ttl;
    let mut sinkhole = bpf::Sinkhole::load(&loaded.rules, &config)?;
    let mode = sinkhole.attach(&args.iface, args.mode)?;
    println!(
        "dnssink: attached to {} ({mode} mode, program id {}): {}; response {}, ttl {}s",
        args.iface,
        sinkhole.program_id()?,
        loaded.summary(),
        response::describe(&config),
        config.ttl,
    );
    wait_for_signal()?;
    drop(sinkhole);
    println!("dnssink: detached from {}", args.iface);
    Ok(())
}

fn wait_for_signal() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("signal received: detaching");
        Ok(())
    })
}

//! The daemon: one or more attached interfaces (`attach`, or `run` with a config file), kept
//! until SIGINT or SIGTERM, reloaded on SIGHUP, with their query logs, control sockets and
//! metrics.

use std::{cell::RefCell, net::SocketAddr, path::PathBuf, rc::Rc, time::Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{MapData, RingBuf};
use dnssink_common::event::Event;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    sync::broadcast,
};

use crate::{
    bpf::{LoadOptions, Sinkhole},
    cli::{AttachArgs, OnExit},
    control, host, iplist, metrics, pin,
    qlog::{self, Entry, Window},
    response,
    state::{self, ListState, State},
};

/// What an instance shares with its log reader, control socket and metrics.
pub struct Shared {
    pub iface: String,
    pub pins: PathBuf,
    pub state: RefCell<State>,
    pub window: RefCell<Window>,
    pub log: broadcast::Sender<Entry>,
}

/// One attached interface.
pub struct Instance {
    args: AttachArgs,
    sinkhole: Sinkhole,
    /// The internal resolvers in the kernel: `--resolver`, and the gateway's own addresses.
    resolvers: Vec<std::net::IpAddr>,
    events: Option<RingBuf<MapData>>,
    shared: Rc<Shared>,
}

impl Instance {
    /// Loads the lists and the program and attaches it to `args.iface`, or takes over the
    /// program a kept instance left there. `argv` is the `attach` argument list, kept in the
    /// state file for `reload` and `query`.
    pub fn start(args: AttachArgs, argv: Vec<String>) -> Result<Instance> {
        if args.lists.blocklists.is_empty() {
            bail!("no list: give at least one --blocklist FILE");
        }
        let iface = args.iface.clone();
        host::check_interface(&iface)?;
        host::check_privileges()?;
        if let Ok(old) = State::load(&iface)
            && old.pid != std::process::id()
            && state::alive(old.pid)
        {
            bail!(
                "dnssink (PID {}) is already attached to {iface}: stop it, or `dnssink reload {iface}`",
                old.pid
            );
        }
        let started = Instant::now();
        let pins = pin::dir(&iface);
        let adopt = pins.join(pin::LINK).exists();
        if !adopt {
            // Maps left by a daemon that died without a kept link: nothing uses them.
            pin::remove(&pins)?;
        }
        pin::create(&pins)?;
        let result = Instance::load(args, argv, &pins, adopt, started);
        if result.is_err() && !adopt {
            let _ = pin::remove(&pins);
        }
        result
    }

    fn load(
        args: AttachArgs,
        argv: Vec<String>,
        pins: &std::path::Path,
        adopt: bool,
        started: Instant,
    ) -> Result<Instance> {
        let iface = args.iface.clone();
        args.check()?;
        let ip_rules = args.ip_rules()?;
        let config = args.config(&ip_rules);
        let clients = if args.clients.is_empty() {
            let nets = host::interface_subnets(&iface)?;
            // A link-local network alone (every IPv6 link has one) is not a LAN's.
            let link_local = |n: &ipnet::IpNet| match n {
                ipnet::IpNet::V6(v6) => v6.addr().segments()[0] & 0xffc0 == 0xfe80,
                ipnet::IpNet::V4(_) => false,
            };
            if nets.iter().all(link_local) {
                bail!(
                    "{iface} has no IP address to take the client networks from: give them \
                     with --clients CIDR (or --clients any)"
                );
            }
            nets
        } else {
            args.clients.clone()
        };
        let opts = LoadOptions {
            pins: Some(pins.to_path_buf()),
            log_buffer: Some(args.log_buffer * 1024),
        };
        // The verifier checks the program while the lists are read: two cores, half the
        // wait. The lists are read on this thread, so that their memory comes from the main
        // arena, which malloc_trim hands back to the system whole once the table is in the
        // kernel.
        let (loaded, sinkhole) = std::thread::scope(|s| {
            let program = s.spawn(|| Sinkhole::load_program(&opts));
            let loaded = args.lists.load();
            let sinkhole = program
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the program loader panicked")));
            (loaded, sinkhole)
        });
        let (loaded, mut sinkhole) = (loaded?, sinkhole?);
        tracing::debug!(
            "lists compiled and program verified at {:.3}s",
            started.elapsed().as_secs_f64()
        );
        // The kept program runs on these maps: every change below is live at once, each one
        // whole, in an order that never opens a gap.
        sinkhole.swap(&loaded.rules, &ip_rules)?;
        let resolvers = internal_resolvers(&args);
        sinkhole.set_resolvers(&resolvers)?;
        sinkhole.set_ports(&args.block_ports)?;
        sinkhole.set_clients(&clients)?;
        sinkhole.set_config(&config)?;
        tracing::debug!("table filled at {:.3}s", started.elapsed().as_secs_f64());
        let keep = args.on_exit == OnExit::Keep;
        let mode = if adopt {
            let old = State::load(&iface).ok();
            sinkhole.adopt(&iface, keep)?;
            let mode = old.map(|s| s.mode).unwrap_or_else(|| "kept".into());
            println!("dnssink: adopted the program kept on {iface} ({mode} mode), with no gap");
            mode
        } else {
            sinkhole.attach(&iface, args.mode, keep)?.to_string()
        };
        let events = if config.log != dnssink_common::event::level::OFF {
            Some(sinkhole.take_events()?)
        } else {
            None
        };
        let now = state::now();
        let state = State {
            pid: std::process::id(),
            args: argv,
            started: now,
            mode: mode.clone(),
            program_id: sinkhole.program_id()?,
            on_exit: format!("{:?}", args.on_exit).to_lowercase(),
            rules: loaded.rules.len(),
            lists: list_states(&loaded),
            loaded: now,
            ..State::default()
        };
        state.write(&iface)?;
        println!(
            "dnssink: attached to {iface} ({mode} mode, program id {}): {}; response {}, ttl {}s; \
             answering {}; {}; rule table {} KiB, loaded in {:.2}s",
            state.program_id,
            loaded.summary(),
            response::describe(&config),
            config.ttl,
            clients
                .iter()
                .map(|n| if n.prefix_len() == 0 {
                    "any".to_string()
                } else {
                    n.to_string()
                })
                .collect::<Vec<_>>()
                .join(", "),
            policy_summary(&args, &ip_rules),
            loaded.rules.table_bytes() / 1024,
            started.elapsed().as_secs_f64(),
        );
        let shared = Rc::new(Shared {
            iface: iface.clone(),
            pins: pins.to_path_buf(),
            state: RefCell::new(state),
            window: RefCell::new(Window::new(args.log_window)),
            log: broadcast::channel(1024).0,
        });
        Ok(Instance {
            args,
            sinkhole,
            resolvers,
            events,
            shared,
        })
    }

    /// Follows the gateway's own addresses, which count as internal resolvers: an address
    /// that comes (a new IPv6 prefix, DHCP) is allowed within a second of the change.
    fn refresh_resolvers(&mut self) {
        let now = internal_resolvers(&self.args);
        if now != self.resolvers {
            match self.sinkhole.set_resolvers(&now) {
                Ok(()) => {
                    tracing::info!(
                        "{}: internal resolvers now {}",
                        self.shared.iface,
                        now.iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.resolvers = now;
                }
                Err(e) => tracing::warn!("{}: {e:#}", self.shared.iface),
            }
        }
    }

    /// Re-reads every list and swaps the new tables in; on any error the old ones stay live.
    fn reload(&mut self) -> Result<String> {
        let started = Instant::now();
        let loaded = self.args.lists.load()?;
        let ip_rules = self.args.ip_rules()?;
        self.sinkhole.swap(&loaded.rules, &ip_rules)?;
        self.sinkhole.set_config(&self.args.config(&ip_rules))?;
        let mut st = self.shared.state.borrow_mut();
        st.rules = loaded.rules.len();
        st.lists = list_states(&loaded);
        st.loaded = state::now();
        Ok(format!(
            "{}; rule table {} KiB, in {:.2}s",
            loaded.summary(),
            loaded.rules.table_bytes() / 1024,
            started.elapsed().as_secs_f64()
        ))
    }

    fn reload_and_record(&mut self) -> Result<()> {
        let result = self.reload();
        let iface = &self.shared.iface;
        let mut st = self.shared.state.borrow_mut();
        st.reloads += 1;
        st.last_reload_time = state::now();
        st.last_reload = match result {
            Ok(summary) => {
                println!("dnssink: reloaded {iface}: {summary}");
                format!("ok {summary}")
            }
            Err(e) => {
                println!("dnssink: reload of {iface} failed, the old rules stay: {e:#}");
                format!("failed {e:#}")
            }
        };
        st.write(iface)
    }

    /// Stops: with `--on-exit detach` the program goes and the pins with it; with `keep` both
    /// stay, and so does the state file, for `status` and the next start.
    fn stop(self) {
        let iface = self.shared.iface.clone();
        let keep = self.args.on_exit == OnExit::Keep;
        drop(self.events);
        drop(self.sinkhole);
        if keep {
            if let Ok(p) = state::socket(&iface) {
                let _ = std::fs::remove_file(p);
            }
            println!("dnssink: left the program on {iface}, filtering with the last rules");
        } else {
            if let Err(e) = pin::remove(&self.shared.pins) {
                tracing::warn!("{e:#}");
            }
            State::remove(&iface);
            println!("dnssink: detached from {iface}");
        }
    }
}

fn list_states(loaded: &crate::Loaded) -> Vec<ListState> {
    loaded
        .lists
        .iter()
        .map(|l| ListState {
            path: l.path.clone(),
            role: format!("{:?}", l.role).to_lowercase(),
            format: format!("{:?}", l.format).to_lowercase(),
            rules: l.rules,
            modified: std::fs::metadata(&l.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        })
        .collect()
}

/// The internal resolvers: none without `--resolver` (DNS may go anywhere); else those given,
/// and every address of the gateway itself on the interface (link-local included), so that
/// clients that learned the router's address from its advertisements are not cut off.
fn internal_resolvers(args: &AttachArgs) -> Vec<std::net::IpAddr> {
    if args.resolvers.is_empty() {
        return Vec::new();
    }
    let mut out = args.resolvers.clone();
    let own = host::interface_addresses(&args.iface).unwrap_or_else(|e| {
        tracing::warn!("{e:#}");
        Vec::new()
    });
    let max = dnssink_common::maps::RESOLVERS_MAX as usize;
    for a in own {
        if out.contains(&a) {
            continue;
        }
        if out.len() == max {
            tracing::warn!(
                "{}: room for {max} internal resolvers only; {a} is not one",
                args.iface
            );
            continue;
        }
        out.push(a);
    }
    out
}

/// What is dropped, in a few words.
fn policy_summary(args: &AttachArgs, ip_rules: &iplist::IpRules) -> String {
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

/// Hands the memory of the lists, now in the kernel, back to the system: the allocator keeps
/// freed heap otherwise, and a router has little RAM.
pub fn release_memory() {
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe { libc::malloc_trim(0) };
}

/// Starts every interface of `specs` (all or none), then serves them until SIGINT or
/// SIGTERM.
pub fn run(specs: Vec<(AttachArgs, Vec<String>)>, metrics: Option<SocketAddr>) -> Result<()> {
    let mut instances = Vec::new();
    for (args, argv) in specs {
        instances.push(Instance::start(args, argv)?);
    }
    release_memory();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, serve(&mut instances, metrics));
    for inst in instances {
        inst.stop();
    }
    result
}

async fn serve(instances: &mut [Instance], metrics: Option<SocketAddr>) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    for inst in instances.iter_mut() {
        control::listen(&state::socket(&inst.shared.iface)?, inst.shared.clone())?;
        if let Some(events) = inst.events.take() {
            // SAFETY: the ring buffer owns its map's fd, open and unchanged while it lives.
            let fd =
                unsafe { AsyncFd::register_with_interest(events, tokio::io::Interest::READABLE) }
                    .map_err(|e| anyhow!("polling the query log: {e}"))?;
            tokio::task::spawn_local(read_log(
                fd,
                inst.shared.clone(),
                inst.args.anonymize_clients,
            ));
        }
    }
    #[cfg(feature = "bpf-log")]
    for inst in instances.iter_mut() {
        let logger = inst.sinkhole.logger()?;
        // SAFETY: the logger owns its ring buffer's fd, open and unchanged while it lives.
        let mut fd =
            unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) }
                .map_err(|e| anyhow!("polling aya-log: {e}"))?;
        tokio::task::spawn_local(async move {
            while let Ok(mut guard) = fd.readable_mut().await {
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
        });
    }
    if let Some(addr) = metrics {
        metrics::listen(addr, instances.iter().map(|i| i.shared.clone()).collect()).await?;
    }
    let _ = sd_notify::notify(
        false,
        &[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&format!(
                "filtering on {}",
                instances
                    .iter()
                    .map(|i| i.shared.iface.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ],
    );
    let mut addresses = tokio::time::interval(std::time::Duration::from_secs(1));
    addresses.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = addresses.tick() => {
                for inst in instances.iter_mut() {
                    inst.refresh_resolvers();
                }
            }
            _ = hup.recv() => {
                let mut notify = vec![sd_notify::NotifyState::Reloading];
                if let Ok(t) = sd_notify::NotifyState::monotonic_usec_now() {
                    notify.push(t);
                }
                let _ = sd_notify::notify(false, &notify);
                for inst in instances.iter_mut() {
                    inst.reload_and_record()?;
                }
                release_memory();
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("signal received: stopping");
    Ok(())
}

/// Reads the kernel's query log into the window and to the followers.
async fn read_log(mut fd: AsyncFd<RingBuf<MapData>>, shared: Rc<Shared>, anonymize: bool) {
    let boot = qlog::monotonic_epoch();
    // The kernel wakes this reader only when the buffer fills up (see dnssink-ebpf's log.rs);
    // otherwise it is drained on this tick.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drain = |rb: &mut RingBuf<MapData>| {
        while let Some(item) = rb.next() {
            if let Some(ev) = Event::from_bytes(&item) {
                let entry = Entry::from_event(&ev, &shared.iface, boot, anonymize);
                // A copy for `log --follow` only when one is listening.
                if shared.log.receiver_count() > 0 {
                    let _ = shared.log.send(entry.clone());
                }
                shared.window.borrow_mut().push(entry);
            }
        }
    };
    loop {
        tokio::select! {
            g = fd.readable_mut() => match g {
                Ok(mut g) => {
                    drain(g.get_inner_mut());
                    g.clear_ready();
                }
                Err(e) => {
                    tracing::warn!("query log: {e}");
                    return;
                }
            },
            _ = tick.tick() => drain(fd.get_mut()),
        }
    }
}

//! The daemon: one or more attached interfaces (`attach`, or `run` with a config file), kept
//! until SIGINT or SIGTERM, reloaded on SIGHUP, with their query logs, control sockets and
//! metrics.

use std::{cell::RefCell, net::SocketAddr, rc::Rc, time::Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    sync::broadcast,
};

use crate::{
    bpf::{LoadOptions, Sinkhole},
    host,
    instance::InstanceId,
    pin,
    plan::{HostView, OnExit, Plan},
    qlog::Window,
    state::{self, ListState, State},
};

pub mod control;
mod log_reader;
mod metrics;
mod shared;

pub use shared::Shared;

/// One attached interface.
pub struct Instance {
    plan: Plan,
    sinkhole: Sinkhole,
    /// The internal resolvers in the kernel: `--resolver`, and the gateway's own addresses.
    resolvers: Vec<std::net::IpAddr>,
    events: Option<RingBuf<MapData>>,
    shared: Rc<Shared>,
}

impl Instance {
    /// Loads the lists and the program and attaches it to `plan.iface`, or takes over the
    /// program a kept instance left there. The plan is kept in the state file for `reload`
    /// and `query`.
    pub fn start(plan: Plan) -> Result<Instance> {
        if plan.lists.blocklists.is_empty() {
            bail!("no list: give at least one --blocklist FILE");
        }
        let iface = plan.iface.clone();
        host::check_interface(&iface)?;
        host::check_privileges()?;
        let id = InstanceId::here(&iface)?;
        if let Ok(old) = id.state()
            && old.pid != std::process::id()
            && state::alive(old.pid)
        {
            bail!(
                "dnssink (PID {}) is already attached to {iface}: stop it, or `dnssink reload {iface}`",
                old.pid
            );
        }
        let started = Instant::now();
        let pins = id.pin_dir();
        let adopt = id.is_kept();
        if !adopt {
            // Maps left by a daemon that died without a kept link: nothing uses them.
            pin::remove(&pins)?;
        }
        pin::create(&pins)?;
        let result = Instance::load(plan, id, adopt, started);
        if result.is_err() && !adopt {
            let _ = pin::remove(&pins);
        }
        result
    }

    fn load(plan: Plan, id: InstanceId, adopt: bool, started: Instant) -> Result<Instance> {
        let iface = plan.iface.clone();
        let pins = id.pin_dir();
        plan.check()?;
        let ip_rules = plan.ip_rules()?;
        let settings = plan.settings(&ip_rules, &host_view(&plan)?)?;
        let opts = LoadOptions {
            pins: Some(pins),
            log_buffer: Some(plan.log_buffer_kib * 1024),
        };
        // The verifier checks the program while the lists are read: two cores, half the
        // wait. The lists are read on this thread, so that their memory comes from the main
        // arena, which malloc_trim hands back to the system whole once the table is in the
        // kernel.
        let (loaded, sinkhole) = std::thread::scope(|s| {
            let program = s.spawn(|| Sinkhole::load_program(&opts));
            let loaded = plan.lists.load();
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
        // The kept program runs on these maps: every change is live at once, each one whole,
        // in the one order that never opens a gap (`Sinkhole::fill`).
        sinkhole.fill(&loaded.rules, &ip_rules, &settings)?;
        tracing::debug!("table filled at {:.3}s", started.elapsed().as_secs_f64());
        let keep = plan.on_exit == OnExit::Keep;
        let mode = if adopt {
            let old = id.state().ok();
            sinkhole.adopt(&iface, keep)?;
            let mode = old.map(|s| s.mode).unwrap_or_else(|| "kept".into());
            println!("dnssink: adopted the program kept on {iface} ({mode} mode), with no gap");
            mode
        } else {
            sinkhole.attach(&iface, plan.mode, keep)?.to_string()
        };
        let config = settings.config;
        let events = if config.log != dnssink_common::event::level::OFF {
            Some(sinkhole.take_events()?)
        } else {
            None
        };
        let now = state::now();
        let state = State {
            pid: std::process::id(),
            plan: plan.clone(),
            started: now,
            mode: mode.clone(),
            program_id: sinkhole.program_id()?,
            on_exit: plan.on_exit,
            rules: loaded.rules.len(),
            lists: list_states(&loaded),
            loaded: now,
            ..State::default()
        };
        state.write(&id.state_path())?;
        println!(
            "dnssink: attached to {iface} ({mode} mode, program id {}): {}; response {}, ttl {}s; \
             answering {}; {}; rule table {} KiB, loaded in {:.2}s",
            state.program_id,
            loaded.summary(),
            plan.response,
            config.ttl,
            settings
                .clients
                .iter()
                .map(|n| if n.prefix_len() == 0 {
                    "any".to_string()
                } else {
                    n.to_string()
                })
                .collect::<Vec<_>>()
                .join(", "),
            plan.policy_summary(&ip_rules),
            loaded.rules.table_bytes() / 1024,
            started.elapsed().as_secs_f64(),
        );
        let shared = Rc::new(Shared {
            id,
            state: RefCell::new(state),
            window: RefCell::new(Window::new(plan.log_window)),
            log: broadcast::channel(1024).0,
        });
        Ok(Instance {
            plan,
            sinkhole,
            resolvers: settings.resolvers,
            events,
            shared,
        })
    }

    /// Follows the gateway's own addresses, which count as internal resolvers: an address
    /// that comes (a new IPv6 prefix, DHCP) is allowed within a second of the change.
    fn refresh_resolvers(&mut self) {
        let now = self
            .plan
            .internal_resolvers(&own_addresses(&self.plan.iface));
        if now != self.resolvers {
            match self.sinkhole.set_resolvers(&now) {
                Ok(()) => {
                    tracing::info!(
                        "{}: internal resolvers now {}",
                        self.shared.id.iface,
                        now.iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.resolvers = now;
                }
                Err(e) => tracing::warn!("{}: {e:#}", self.shared.id.iface),
            }
        }
    }

    /// Re-reads every list and swaps the new tables in; on any error the old ones stay live.
    fn reload(&mut self) -> Result<String> {
        let started = Instant::now();
        let loaded = self.plan.lists.load()?;
        let ip_rules = self.plan.ip_rules()?;
        let settings = self.plan.settings(&ip_rules, &host_view(&self.plan)?)?;
        self.sinkhole.fill(&loaded.rules, &ip_rules, &settings)?;
        self.resolvers = settings.resolvers;
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

    /// Reloads, and records how it went in the state file: the summary, or why it failed
    /// (the old rules stay). An error is the state file's.
    fn reload_and_record(&mut self) -> Result<std::result::Result<String, String>> {
        let result = self.reload().map_err(|e| format!("{e:#}"));
        let iface = &self.shared.id.iface;
        let mut st = self.shared.state.borrow_mut();
        st.reloads += 1;
        st.last_reload_time = state::now();
        st.last_reload = match &result {
            Ok(summary) => {
                println!("dnssink: reloaded {iface}: {summary}");
                format!("ok {summary}")
            }
            Err(e) => {
                println!("dnssink: reload of {iface} failed, the old rules stay: {e}");
                format!("failed {e}")
            }
        };
        st.write(&self.shared.id.state_path())?;
        Ok(result)
    }

    /// Stops: with `--on-exit detach` the program goes and the pins with it; with `keep` both
    /// stay, and so does the state file, for `status` and the next start.
    fn stop(self) {
        let id = self.shared.id.clone();
        let iface = &id.iface;
        let keep = self.plan.on_exit == OnExit::Keep;
        drop(self.events);
        drop(self.sinkhole);
        if keep {
            let _ = std::fs::remove_file(id.socket());
            println!("dnssink: left the program on {iface}, filtering with the last rules");
        } else {
            if let Err(e) = pin::remove(&id.pin_dir()) {
                tracing::warn!("{e:#}");
            }
            id.remove_state();
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
            role: l.role,
            format: l.format,
            rules: l.rules,
            modified: std::fs::metadata(&l.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        })
        .collect()
}

/// What the host says about the plan's interface: its addresses (internal resolvers too),
/// and its subnets when the plan names no clients.
fn host_view(plan: &Plan) -> Result<HostView> {
    Ok(HostView {
        addresses: own_addresses(&plan.iface),
        subnets: if plan.clients.is_empty() {
            host::interface_subnets(&plan.iface)?
        } else {
            Vec::new()
        },
    })
}

fn own_addresses(iface: &str) -> Vec<std::net::IpAddr> {
    host::interface_addresses(iface).unwrap_or_else(|e| {
        tracing::warn!("{e:#}");
        Vec::new()
    })
}

/// Hands the memory of the lists, now in the kernel, back to the system: glibc's allocator
/// keeps freed heap otherwise, and a router has little RAM. (musl's, in the static builds,
/// returns it by itself and has no `malloc_trim`.)
pub fn release_memory() {
    // SAFETY: malloc_trim only returns free memory to the system.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
}

/// Starts every interface of `specs` (all or none), then serves them until SIGINT or
/// SIGTERM.
pub fn run(plans: Vec<Plan>, metrics: Option<SocketAddr>) -> Result<()> {
    let mut instances = Vec::new();
    for plan in plans {
        instances.push(Instance::start(plan)?);
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
    // Reloads asked for on the control sockets, by instance.
    let (reloads, mut reload_asked) = tokio::sync::mpsc::unbounded_channel();
    for (i, inst) in instances.iter_mut().enumerate() {
        control::listen(inst.shared.clone(), i, reloads.clone())?;
        if let Some(events) = inst.events.take() {
            // SAFETY: the ring buffer owns its map's fd, open and unchanged while it lives.
            let fd =
                unsafe { AsyncFd::register_with_interest(events, tokio::io::Interest::READABLE) }
                    .map_err(|e| anyhow!("polling the query log: {e}"))?;
            tokio::task::spawn_local(log_reader::read_log(
                fd,
                inst.shared.clone(),
                inst.plan.anonymize_clients,
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
                    .map(|i| i.shared.id.iface.as_str())
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
            Some(control::Reload { instance, reply }) = reload_asked.recv() => {
                if let Some(inst) = instances.get_mut(instance) {
                    let result = reloading(|| inst.reload_and_record())?;
                    let _ = reply.send(result);
                }
            }
            _ = hup.recv() => {
                reloading(|| {
                    for inst in instances.iter_mut() {
                        let _ = inst.reload_and_record()?; // recorded and printed
                    }
                    Ok(())
                })?;
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("signal received: stopping");
    Ok(())
}

/// Runs a reload, however it was asked for (SIGHUP, `dnssink reload`), between systemd's
/// RELOADING and READY, and hands the lists' memory back after it.
fn reloading<T>(reload: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut notify = vec![sd_notify::NotifyState::Reloading];
    if let Ok(t) = sd_notify::NotifyState::monotonic_usec_now() {
        notify.push(t);
    }
    let _ = sd_notify::notify(false, &notify);
    let result = reload();
    release_memory();
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    result
}

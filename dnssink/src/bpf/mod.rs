//! The BPF program in the kernel: load it, fill its maps, attach it.

use std::{
    collections::HashMap as StdHashMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};
use std::net::IpAddr;

use aya::{
    Ebpf, EbpfLoader, VerifierLogLevel,
    maps::{
        Array, ArrayOfMaps, HashMap, LpmTrie, Map, MapData, PerCpuArray, RingBuf, lpm_trie::Key,
    },
    programs::{
        LinkOrder, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::{
            NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle, qdisc_add_clsact,
        },
        xdp::{XdpError, XdpLink, XdpLinkId},
    },
};
use dnssink_common::{
    answer::{self, Template},
    config::Config,
    counters, maps,
    policy::{self, IpRule},
};

use crate::{
    compile::RuleSet,
    host::{Features, driver},
    iplist::IpRules,
    plan::Settings,
};

mod sys;
pub use sys::LiveTable;
use sys::{create_table, create_trie};

/// The program object, built by build.rs.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dnssink"));

/// How to attach.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Native where the driver has it, generic otherwise (and on veth, where native-mode
    /// XDP_TX needs an XDP program on the peer too).
    Auto,
    /// In the driver.
    Native,
    /// In the kernel's generic (skb) path: works on every interface.
    Generic,
}

/// The loaded program and its maps.
pub struct Sinkhole {
    ebpf: Ebpf,
    /// Where the maps (and with `--on-exit keep`, the link) are pinned.
    pins: Option<PathBuf>,
    /// What the programs were loaded for.
    features: Features,
}

/// How to load the program.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Pin the maps here, or reuse those pinned here already (a kept instance's).
    pub pins: Option<PathBuf>,
    /// Bytes of the query log's ring buffer (a power of two, at least a page); None for the
    /// program's default.
    pub log_buffer: Option<u32>,
}

impl Sinkhole {
    /// Loads the program and fills its maps (for tests and the bench): the rule table, no
    /// blocked destinations, and `settings`.
    pub fn load(rules: &RuleSet, settings: &Settings) -> Result<Sinkhole> {
        let mut s = Sinkhole::load_program(&LoadOptions::default())?;
        s.fill(rules, &IpRules::default(), settings)?;
        Ok(s)
    }

    /// Fills every map, in the one order that start, reload and tests share: the rule and
    /// destination tables are swapped in whole, then the small maps are updated key by key
    /// (a key that stays is never touched), and the config is written last, so that a flag never
    /// points at a map not yet filled. A kept program runs on these maps: each step is live
    /// at once, and none opens a gap.
    pub fn fill(&mut self, rules: &RuleSet, ips: &IpRules, settings: &Settings) -> Result<()> {
        self.swap(rules, ips)?;
        self.set_settings(settings)
    }

    /// The small maps and the config, in [`Sinkhole::fill`]'s order.
    pub fn set_settings(&mut self, s: &Settings) -> Result<()> {
        self.set_resolvers(&s.resolvers)?;
        self.set_ports(&s.ports)?;
        self.set_clients(&s.clients)?;
        self.set_config(&s.config)
    }

    /// Loads the program with no config and no rules yet (or with those of the maps pinned
    /// in `opts.pins`): the verifier's work, which can run while the lists are read.
    pub fn load_program(opts: &LoadOptions) -> Result<Sinkhole> {
        let mut features = Features::probe();
        if !features.branching_walk {
            return Sinkhole::load_with(opts, features);
        }
        // The walk with fewer instructions per byte, where this kernel's verifier takes it.
        match Sinkhole::load_with(opts, features) {
            Ok(s) => Ok(s),
            Err(e) if refused_by_verifier(&e) => {
                tracing::info!(
                    "this kernel's verifier refuses the name walk that branches per byte; \
                     loading the branch-free one"
                );
                tracing::debug!("the refusal: {e:#}");
                features.branching_walk = false;
                Sinkhole::load_with(opts, features)
            }
            // Anything else (pins, privileges, maps) fails the same way with either walk.
            Err(e) => Err(e),
        }
    }

    fn load_with(opts: &LoadOptions, features: Features) -> Result<Sinkhole> {
        tracing::debug!("loading with {features:?}");
        let t = std::time::Instant::now();
        let mut loader = EbpfLoader::new();
        // A refused program reports the verifier's verdict and statistics, not its full
        // trace: older kernels abort the load when a trace overflows the log (ENOSPC), which
        // hides the reason. DNSSINK_VERIFIER_LOG=verbose asks for the trace, =debug for its
        // branch points only.
        loader.verifier_log_level(match std::env::var("DNSSINK_VERIFIER_LOG").as_deref() {
            Ok("verbose") => VerifierLogLevel::VERBOSE | VerifierLogLevel::STATS,
            Ok("debug") => VerifierLogLevel::DEBUG | VerifierLogLevel::STATS,
            _ => VerifierLogLevel::STATS,
        });
        if let Some(dir) = &opts.pins {
            for name in maps::ALL {
                loader.map_pin_path(name, crate::pin::map(dir, name));
            }
        }
        if let Some(bytes) = opts.log_buffer {
            loader.map_max_entries(maps::EVENTS, bytes);
        }
        let (load_bytes, walk) = (features.load_bytes as u8, features.branching_walk as u8);
        loader.override_global(dnssink_common::globals::LOAD_BYTES, &load_bytes, true);
        loader.override_global(dnssink_common::globals::BRANCHING_WALK, &walk, true);
        let mut ebpf = loader.load(OBJECT).with_context(|| match &opts.pins {
            Some(dir) => format!("loading the BPF object with its maps in {}", dir.display()),
            None => "loading the BPF object".to_string(),
        })?;
        let (mut xdp, mut tcp) = (None, None);
        for (name, p) in ebpf.programs_mut() {
            match name {
                dnssink_common::PROGRAM => xdp = Some(p),
                dnssink_common::TCP_PROGRAM => tcp = Some(p),
                _ => {}
            }
        }
        let prog: &mut Xdp = xdp
            .ok_or_else(|| anyhow!("no program {} in the object", dnssink_common::PROGRAM))?
            .try_into()?;
        let tcp: &mut SchedClassifier = tcp
            .ok_or_else(|| anyhow!("no program {} in the object", dnssink_common::TCP_PROGRAM))?
            .try_into()?;
        // The two programs are verified each on its own: at once, on two cores.
        let (loaded, tcp_loaded) = std::thread::scope(|s| {
            let tcp = s.spawn(|| {
                let t = std::time::Instant::now();
                tcp.load().map(|()| t.elapsed())
            });
            let t = std::time::Instant::now();
            let loaded = prog.load().map(|()| t.elapsed());
            (loaded, tcp.join())
        });
        let xdp_time = loaded.context("loading the XDP program into the kernel")?;
        let tcp_time = tcp_loaded
            .map_err(|_| anyhow!("the TCP program's loader panicked"))?
            .context("loading the tc program for DNS over TCP into the kernel")?;
        for (what, info, time) in [
            ("program", prog.info(), xdp_time),
            ("TCP program", tcp.info(), tcp_time),
        ] {
            match info {
                Ok(info) => tracing::debug!(
                    "{what} loaded: {} bytes translated, {} instructions verified, in {:.3}s",
                    info.size_translated().unwrap_or(0),
                    info.verified_instruction_count().unwrap_or(0),
                    time.as_secs_f64()
                ),
                Err(e) => tracing::debug!("no {what} info: {e}"),
            }
        }
        tracing::debug!("programs verified in {:.3}s", t.elapsed().as_secs_f64());
        if let Some(dir) = &opts.pins {
            crate::pin::restrict(dir)?;
        }
        Ok(Sinkhole {
            ebpf,
            pins: opts.pins.clone(),
            features,
        })
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("no map {name} in the object"))
    }

    /// Writes the config and its answers: the answers into the half of `ANSWERS` that the
    /// live config does not read, then the config that reads them.
    pub fn set_config(&mut self, config: &Config) -> Result<()> {
        let live: Array<_, Config> = Array::try_from(self.map_mut(maps::CONFIG)?)?;
        let half = 1 - (live.get(&0, 0).context("reading the CONFIG map")?.answers & 1);
        let mut answers: Array<_, Template> = Array::try_from(self.map_mut(maps::ANSWERS)?)?;
        for (i, t) in answer::templates(config).iter().enumerate() {
            let at = half as u32 * answer::TEMPLATES as u32 + i as u32;
            answers.set(at, t, 0).context("writing the ANSWERS map")?;
        }
        let config = Config {
            answers: half,
            ..*config
        };
        let mut a: Array<_, Config> = Array::try_from(self.map_mut(maps::CONFIG)?)?;
        a.set(0, config, 0).context("writing the CONFIG map")
    }

    /// Builds the rule table and the tries of blocked destinations beside the live ones, then
    /// makes them live, one map update each. Every new map is built before any goes live: a
    /// failure leaves the old rules and the old destinations in place, together. The old maps
    /// are freed once no packet uses them.
    pub fn swap(&mut self, rules: &RuleSet, ips: &IpRules) -> Result<()> {
        const ENTRIES: u32 = 65536;
        let table = create_table(&rules.table).with_context(|| {
            format!(
                "creating the rule table ({} KiB of kernel memory)",
                rules.table_bytes() / 1024
            )
        })?;
        if ips.v4.len().max(ips.v6.len()) > ENTRIES as usize {
            bail!("more than {ENTRIES} blocked IPv4 or IPv6 destinations");
        }
        let mut t4: LpmTrie<MapData, [u8; 4], IpRule> = create_trie(ENTRIES)?;
        for (addr, len, rule) in &ips.v4 {
            t4.insert(&Key::new(*len as u32, *addr), rule, 0)?;
        }
        let mut t6: LpmTrie<MapData, [u8; 16], IpRule> = create_trie(ENTRIES)?;
        for (addr, len, rule) in &ips.v6 {
            t6.insert(&Key::new(*len as u32, *addr), rule, 0)?;
        }
        let mut slot: ArrayOfMaps<&mut MapData, MapData> =
            ArrayOfMaps::try_from(self.map_mut(maps::TABLES)?)?;
        slot.set(0, &table, 0)
            .context("making the rule table live")?;
        let mut s4: ArrayOfMaps<&mut MapData, LpmTrie<MapData, [u8; 4], IpRule>> =
            ArrayOfMaps::try_from(self.map_mut(maps::BLOCK4)?)?;
        s4.set(0, &t4, 0)
            .context("making the IPv4 block list live")?;
        let mut s6: ArrayOfMaps<&mut MapData, LpmTrie<MapData, [u8; 16], IpRule>> =
            ArrayOfMaps::try_from(self.map_mut(maps::BLOCK6)?)?;
        s6.set(0, &t6, 0).context("making the IPv6 block list live")
    }

    /// The internal resolvers (--resolver).
    pub fn set_resolvers(&mut self, addrs: &[IpAddr]) -> Result<()> {
        let keys: Vec<[u8; 16]> = addrs
            .iter()
            .map(|a| match a {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            })
            .collect();
        let mut m: HashMap<_, [u8; 16], u8> = HashMap::try_from(self.map_mut(maps::RESOLVERS)?)?;
        let old: Vec<[u8; 16]> = m.keys().filter_map(|k| k.ok()).collect();
        replace_keys(old, &keys, |k, add| {
            if add { m.insert(k, 1, 0) } else { m.remove(k) }
        })
        .context("filling the RESOLVERS map")
    }

    /// The networks whose queries may be answered (--clients).
    pub fn set_clients(&mut self, nets: &[ipnet::IpNet]) -> Result<()> {
        let keys: Vec<(u32, [u8; 16])> = nets
            .iter()
            .map(|n| match n.trunc() {
                ipnet::IpNet::V4(v4) => (
                    96 + u32::from(v4.prefix_len()),
                    v4.network().to_ipv6_mapped().octets(),
                ),
                ipnet::IpNet::V6(v6) => (u32::from(v6.prefix_len()), v6.network().octets()),
            })
            .collect();
        let mut m: LpmTrie<_, [u8; 16], u8> = LpmTrie::try_from(self.map_mut(maps::CLIENTS)?)?;
        let old: Vec<(u32, [u8; 16])> = m
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| (k.prefix_len(), k.data()))
            .collect();
        replace_keys(old, &keys, |(len, addr), add| {
            let key = Key::new(*len, *addr);
            if add {
                m.insert(&key, 1, 0)
            } else {
                m.remove(&key)
            }
        })
        .context("filling the CLIENTS map")
    }

    /// The blocked ports (--block-port).
    pub fn set_ports(&mut self, ports: &[(u8, u16)]) -> Result<()> {
        let keys: Vec<u32> = ports
            .iter()
            .map(|&(proto, port)| policy::port_key(proto, port))
            .collect();
        let mut m: HashMap<_, u32, u8> = HashMap::try_from(self.map_mut(maps::PORTS)?)?;
        let old: Vec<u32> = m.keys().filter_map(|k| k.ok()).collect();
        replace_keys(old, &keys, |k, add| {
            if add { m.insert(k, 1, 0) } else { m.remove(k) }
        })
        .context("filling the PORTS map")
    }

    /// The XDP program.
    pub fn program(&self) -> &Xdp {
        self.loaded(dnssink_common::PROGRAM)
    }

    fn program_mut(&mut self) -> &mut Xdp {
        self.loaded_mut(dnssink_common::PROGRAM)
    }

    /// The tc program for DNS over TCP.
    pub fn tcp_program(&self) -> &SchedClassifier {
        self.loaded(dnssink_common::TCP_PROGRAM)
    }

    fn tcp_program_mut(&mut self) -> &mut SchedClassifier {
        self.loaded_mut(dnssink_common::TCP_PROGRAM)
    }

    /// A program of the object, of the type it was checked to have at load.
    fn loaded<'a, T>(&'a self, name: &str) -> &'a T
    where
        &'a T: TryFrom<&'a aya::programs::Program>,
    {
        self.ebpf
            .program(name)
            .and_then(|p| p.try_into().ok())
            .expect("the program was checked at load")
    }

    fn loaded_mut<'a, T>(&'a mut self, name: &str) -> &'a mut T
    where
        &'a mut T: TryFrom<&'a mut aya::programs::Program>,
    {
        self.ebpf
            .program_mut(name)
            .and_then(|p| p.try_into().ok())
            .expect("the program was checked at load")
    }

    /// Attaches the TCP program to `iface`'s ingress: as a TCX link where the kernel has TCX
    /// (Linux 6.6), pinned in `keep` (the directory) when the program must outlive this
    /// process; else as a filter in a clsact qdisc (see [`TcFilter`]).
    fn attach_tcp(&mut self, iface: &str, keep: Option<&Path>) -> Result<()> {
        let tcx = self.features.tcx;
        let prog = self.tcp_program_mut();
        if !tcx {
            return TcFilter::attach(prog, iface, keep.is_some());
        }
        let tcx = TcAttachOptions::TcxOrder(LinkOrder::default());
        let id = match prog.attach_with_options(iface, TcAttachType::Ingress, tcx) {
            Ok(id) => id,
            // A kernel without TCX does not know its attach type.
            Err(e) if matches!(errno(&e), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
                tracing::info!(
                    "no TCX on this kernel ({e}): the TCP program goes in a tc filter on \
                     {iface}'s clsact qdisc (ingress, priority {}, handle 0:{:#x})",
                    TcFilter::PRIORITY,
                    u32::from(TcFilter::HANDLE)
                );
                return TcFilter::attach(prog, iface, keep.is_some());
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("attaching the TCP program to {iface}'s ingress"));
            }
        };
        if let Some(dir) = keep {
            let link = prog.take_link(id)?;
            let link = FdLink::try_from(link)
                .map_err(|_| anyhow!("the TCP program's TCX attachment gave no BPF link"))?;
            let path = dir.join(crate::pin::TCP_LINK);
            link.pin(&path)
                .with_context(|| format!("pinning the TCP link at {}", path.display()))?;
        }
        Ok(())
    }

    /// Attaches to `iface` and returns the mode it is attached in. With `keep`, the link is
    /// pinned beside the maps: the program stays attached when this process ends.
    pub fn attach(&mut self, iface: &str, mode: Mode, keep: bool) -> Result<&'static str> {
        let (id, name) = self.attach_link(iface, mode)?;
        let dir = self.pins.clone();
        self.attach_tcp(iface, if keep { dir.as_deref() } else { None })?;
        if keep {
            let dir = self
                .pins
                .clone()
                .ok_or_else(|| anyhow!("--on-exit keep needs the maps pinned"))?;
            let link = self.program_mut().take_link(id)?;
            let link = FdLink::try_from(link).map_err(|_| {
                anyhow!(
                    "--on-exit keep needs a BPF link, which this kernel does not give for XDP \
                     (Linux 5.9 or later)"
                )
            })?;
            let path = dir.join(crate::pin::LINK);
            link.pin(&path)
                .with_context(|| format!("pinning the link at {}", path.display()))?;
            crate::pin::restrict(&dir)?;
        }
        Ok(name)
    }

    /// Takes over the programs attached by a kept instance on `iface` (pinned in this one's
    /// directory): each link switches to this instance's program in one update, so no packet
    /// goes unfiltered. With `keep` false the pins are removed, and the programs go when this
    /// process ends. An instance kept by a dnssink without the TCP program left no TCP link:
    /// the TCP program is attached anew.
    pub fn adopt(&mut self, iface: &str, keep: bool) -> Result<()> {
        let dir = self
            .pins
            .clone()
            .ok_or_else(|| anyhow!("adopting needs the maps pinned"))?;
        let tcp_pin = dir.join(crate::pin::TCP_LINK);
        if tcp_pin.exists() {
            let link = SchedClassifierLink::try_from(kept_link(&tcp_pin, keep)?)
                .context("the kept TCP link is not a TCX link")?;
            self.tcp_program_mut()
                .attach_to_link(link)
                .context("switching the kept TCP link to the new program")?;
        } else {
            // A kept tc filter (no TCX) is replaced in place; none at all (kept by a dnssink
            // without the TCP program) is attached anew.
            self.attach_tcp(iface, keep.then_some(dir.as_path()))?;
            crate::pin::restrict(&dir)?;
        }
        let link = XdpLink::try_from(kept_link(&dir.join(crate::pin::LINK), keep)?)
            .context("the kept link is not an XDP link")?;
        self.program_mut()
            .attach_to_link(link)
            .context("switching the kept link to the new program")?;
        Ok(())
    }

    fn attach_link(&mut self, iface: &str, mode: Mode) -> Result<(XdpLinkId, &'static str)> {
        let (first, fallback) = match mode {
            Mode::Native => (XdpMode::Driver, None),
            Mode::Generic => (XdpMode::Skb, None),
            Mode::Auto if driver(iface).as_deref() == Some("veth") => (XdpMode::Skb, None),
            Mode::Auto => (XdpMode::Driver, Some(XdpMode::Skb)),
        };
        let prog = self.program_mut();
        match prog.attach(iface, first) {
            Ok(id) => Ok((id, mode_name(first))),
            Err(e) if errno(&e) == Some(libc::EOPNOTSUPP) || errno(&e) == Some(libc::EINVAL) => {
                match fallback {
                    Some(m) => {
                        tracing::info!("{iface} has no native XDP; attaching in generic mode");
                        let id = prog
                            .attach(iface, m)
                            .map_err(|e| attach_error(e, iface, m))?;
                        Ok((id, mode_name(m)))
                    }
                    None => Err(attach_error(e, iface, first)),
                }
            }
            Err(e) => Err(attach_error(e, iface, first)),
        }
    }

    /// The kernel's id for the loaded program.
    pub fn program_id(&self) -> Result<u32> {
        Ok(self.program().info()?.id())
    }

    /// The counters, summed over CPUs, by name.
    pub fn counters(&self) -> Result<StdHashMap<&'static str, u64>> {
        let map = self
            .ebpf
            .map(maps::COUNTERS)
            .ok_or_else(|| anyhow!("no COUNTERS map"))?;
        read_counters(map)
    }

    /// The program's aya-log lines (built with `--features bpf-log`), forwarded to the `log`
    /// crate and from there to tracing.
    #[cfg(feature = "bpf-log")]
    pub fn logger(&mut self) -> Result<aya_log::EbpfLogger<&'static dyn log::Log>> {
        aya_log::EbpfLogger::init(&mut self.ebpf).context("starting aya-log")
    }

    /// The query log's ring buffer, for one reader.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(maps::EVENTS)
            .ok_or_else(|| anyhow!("no {} map (already taken?)", maps::EVENTS))?;
        Ok(RingBuf::try_from(map)?)
    }
}

/// The TCP program as a filter of a clsact qdisc's ingress, on kernels without TCX (before
/// 6.6): at a fixed priority and handle, so that the next instance finds it. Such a filter is
/// not tied to a file descriptor: a kept one simply stays, and one left by a daemon that was
/// killed is replaced by the next start or removed by `dnssink detach`.
pub struct TcFilter;

impl TcFilter {
    /// First among the filters (the lowest number runs first).
    pub const PRIORITY: u16 = 1;
    pub const HANDLE: TcHandle = TcHandle::new(0, 0x53);

    fn existing(iface: &str) -> Result<SchedClassifierLink> {
        SchedClassifierLink::attached(
            iface,
            TcAttachType::Ingress,
            Self::PRIORITY,
            Self::HANDLE,
            None,
        )
        .with_context(|| format!("no interface {iface}"))
    }

    /// Puts `prog` in the filter on `iface`, replacing the program there in one update if
    /// there is one; with `keep`, the filter stays when this process ends.
    fn attach(prog: &mut SchedClassifier, iface: &str, keep: bool) -> Result<()> {
        if let Err(e) = qdisc_add_clsact(iface)
            && !matches!(&e, TcError::NetlinkError(n) if n.raw_os_error() == Some(libc::EEXIST))
        {
            return Err(e).with_context(|| {
                format!(
                    "adding a clsact qdisc to {iface} for the TCP program (this kernel has no \
                     TCX; it needs CONFIG_NET_SCH_INGRESS, OpenWrt's kmod-sched-core)"
                )
            });
        }
        let id = match prog.attach_to_link(Self::existing(iface)?) {
            Ok(id) => id,
            Err(_) => {
                let opts = TcAttachOptions::Netlink(NlOptions {
                    priority: Self::PRIORITY,
                    handle: Self::HANDLE,
                    classid: None,
                });
                prog.attach_with_options(iface, TcAttachType::Ingress, opts)
                    .with_context(|| {
                        format!(
                            "attaching the TCP program as a tc filter on {iface} (this kernel \
                             has no TCX; it needs CONFIG_NET_CLS_BPF, OpenWrt's kmod-sched-bpf)"
                        )
                    })?
            }
        };
        if keep {
            // Out of the program's hands, so that dropping the program leaves it attached.
            std::mem::forget(prog.take_link(id)?);
        }
        Ok(())
    }

    /// Removes the filter from `iface`, if there is one.
    pub fn remove(iface: &str) {
        if let Ok(link) = Self::existing(iface) {
            use aya::programs::links::Link as _;
            let _ = link.detach();
        }
    }
}

/// Whether `e` is a program the kernel refused to load (the verifier's verdict), rather
/// than a failure before it (the object, its maps, privileges).
fn refused_by_verifier(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ProgramError>(),
            Some(ProgramError::LoadError { .. })
        )
    })
}

/// The BPF link pinned at `path`, its pin kept or removed.
fn kept_link(path: &Path, keep: bool) -> Result<FdLink> {
    let pinned = PinnedLink::from_pin(path)
        .with_context(|| format!("opening the kept link {}", path.display()))?;
    if keep {
        Ok(FdLink::from(pinned))
    } else {
        pinned
            .unpin()
            .with_context(|| format!("removing {}", path.display()))
    }
}

/// The counters of the instance pinned in `dir`, summed over CPUs, by name.
pub fn pinned_counters(dir: &Path) -> Result<StdHashMap<&'static str, u64>> {
    let path = crate::pin::map(dir, maps::COUNTERS);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    read_counters(&Map::from_map_data(data)?)
}

fn read_counters(map: &Map) -> Result<StdHashMap<&'static str, u64>> {
    let a: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
    let mut out = StdHashMap::new();
    for &(idx, name) in counters::ALL {
        let per_cpu = a.get(&idx, 0).context("reading COUNTERS")?;
        out.insert(name, per_cpu.iter().sum());
    }
    Ok(out)
}

/// Makes a set map's keys, `old` now, exactly `keys`, with `apply(key, add)`. A key in both is never touched, so a
/// live program (a kept one, adopted) never misses a key that stays; the stale ones go
/// first, so that the map never holds more than the larger of the two sets.
fn replace_keys<K: PartialEq>(
    old: Vec<K>,
    keys: &[K],
    mut apply: impl FnMut(&K, bool) -> Result<(), aya::maps::MapError>,
) -> Result<()> {
    for k in old.iter().filter(|k| !keys.contains(k)) {
        apply(k, false)?;
    }
    for k in keys.iter().filter(|k| !old.contains(k)) {
        apply(k, true)?;
    }
    Ok(())
}

fn mode_name(m: XdpMode) -> &'static str {
    match m {
        XdpMode::Skb => "generic",
        XdpMode::Driver => "native",
        XdpMode::Hardware => "offload",
        XdpMode::Default => "default",
    }
}

fn errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        ProgramError::XdpError(XdpError::NetlinkError(n)) => n.raw_os_error(),
        _ => None,
    }
}

fn attach_error(e: ProgramError, iface: &str, mode: XdpMode) -> anyhow::Error {
    let msg = match errno(&e) {
        Some(libc::EBUSY) | Some(libc::EEXIST) => format!(
            "an XDP program is already attached to {iface}; see `ip link show dev {iface}` \
             and remove it (`ip link set dev {iface} xdp off`) first"
        ),
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) if mode == XdpMode::Driver => {
            format!("{iface} does not support native XDP; try --mode generic")
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            format!("not allowed to attach to {iface}: run as root, or with CAP_NET_ADMIN")
        }
        _ => format!("cannot attach to {iface} in {} mode", mode_name(mode)),
    };
    anyhow::Error::new(e).context(msg)
}

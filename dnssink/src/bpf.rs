//! The BPF program in the kernel: load it, fill its maps, attach it.

use std::{
    collections::HashMap as StdHashMap,
    io,
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
        LinkOrder, ProgramError, ProgramType, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::{
            NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle, qdisc_add_clsact,
        },
        xdp::{XdpError, XdpLink, XdpLinkId},
    },
    sys::{BpfHelper, is_helper_supported},
};
use dnssink_common::{
    config::Config,
    counters, maps,
    policy::{self, IpRule},
    table::Bucket,
};

use crate::{iplist::IpRules, rules::RuleSet};

/// The program object, built by build.rs.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dnssink"));

/// How to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
    /// Loads the program and fills its maps: the config, and the rule table.
    pub fn load(rules: &RuleSet, config: &Config) -> Result<Sinkhole> {
        let mut s = Sinkhole::load_program(&LoadOptions::default())?;
        s.set_config(config)?;
        s.swap(rules, &IpRules::default())?;
        Ok(s)
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
            Err(e) => {
                tracing::info!(
                    "this kernel's verifier refuses the name walk that branches per byte; \
                     loading the branch-free one"
                );
                tracing::debug!("the refusal: {e:#}");
                features.branching_walk = false;
                Sinkhole::load_with(opts, features)
            }
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
        match prog.info() {
            Ok(info) => tracing::debug!(
                "program loaded: {} bytes translated, {} instructions verified, in {:.3}s",
                info.size_translated().unwrap_or(0),
                info.verified_instruction_count().unwrap_or(0),
                xdp_time.as_secs_f64()
            ),
            Err(e) => tracing::debug!("no program info: {e}"),
        }
        match tcp.info() {
            Ok(info) => tracing::debug!(
                "TCP program loaded: {} bytes translated, {} instructions verified, in {:.3}s",
                info.size_translated().unwrap_or(0),
                info.verified_instruction_count().unwrap_or(0),
                tcp_time.as_secs_f64()
            ),
            Err(e) => tracing::debug!("no TCP program info: {e}"),
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

    pub fn set_config(&mut self, config: &Config) -> Result<()> {
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

/// A new ARRAY map holding `buckets`, written through a shared mapping of the map's memory:
/// one copy instead of a syscall per bucket.
/// The attributes of BPF_MAP_CREATE that dnssink sets.
#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

fn map_create(attr: &MapCreate) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    const BPF_MAP_CREATE: libc::c_long = 0;
    // SAFETY: BPF_MAP_CREATE with an attr that lives across the call; the result is a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr as *const MapCreate,
            std::mem::size_of::<MapCreate>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// A BTF object of plain types for a map made outside the object: a key struct of
/// `key_size` bytes (type 4) and a value struct of `value_size` bytes (type 6).
///
/// An LPM trie for a map-in-map slot needs BTF like the slot's template has: from 5.15 to
/// 6.1 the kernel compares where the two have a timer, which is "none" for a struct value
/// with BTF and "not looked for" for a map without BTF (or a value that is no struct), and
/// refuses the update (EINVAL) when they differ.
fn plain_btf(key_size: u32, value_size: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    const BPF_BTF_LOAD: libc::c_long = 18;
    const INT: u32 = 1 << 24;
    const ARRAY: u32 = 3 << 24;
    const STRUCT: u32 = 4 << 24;
    let strings = b"\0u32\0u8\0key\0b\0value\0";
    #[rustfmt::skip]
    let types: [u32; 32] = [
        1, INT, 4, 32, // 1: u32
        5, INT, 1, 8, // 2: u8
        0, ARRAY, 0, 2, 1, key_size, // 3: [u8; key_size]
        8, STRUCT | 1, key_size, 12, 3, 0, // 4: struct key { b: [u8; key_size] }
        0, ARRAY, 0, 2, 1, value_size, // 5: [u8; value_size]
        14, STRUCT | 1, value_size, 12, 5, 0, // 6: struct value { b: [u8; value_size] }
    ];
    let type_len = (types.len() * 4) as u32;
    let mut blob = Vec::new();
    blob.extend_from_slice(&0xeb9fu16.to_le_bytes());
    blob.extend_from_slice(&[1, 0]); // version, flags
    for v in [24, 0, type_len, type_len, strings.len() as u32] {
        blob.extend_from_slice(&v.to_le_bytes());
    }
    for t in &types {
        blob.extend_from_slice(&t.to_le_bytes());
    }
    blob.extend_from_slice(strings);
    #[repr(C)]
    struct BtfLoad {
        btf: u64,
        log_buf: u64,
        size: u32,
        log_size: u32,
        log_level: u32,
        // Zero, not padding: a kernel that does not know the fields past its own refuses
        // an attr whose bytes there are not zero.
        _pad: u32,
    }
    let attr = BtfLoad {
        btf: blob.as_ptr() as u64,
        log_buf: 0,
        size: blob.len() as u32,
        log_size: 0,
        log_level: 0,
        _pad: 0,
    };
    // SAFETY: BPF_BTF_LOAD of a blob and an attr that live across the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_BTF_LOAD,
            &attr as *const BtfLoad,
            std::mem::size_of::<BtfLoad>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// An empty LPM trie of `entries` for a block list slot, with BTF (see [`plain_btf`]).
fn create_trie<K: aya::Pod, V: aya::Pod>(entries: u32) -> Result<LpmTrie<MapData, K, V>> {
    use std::os::fd::AsRawFd as _;
    const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
    const NO_PREALLOC: u32 = 1;
    let key_size = std::mem::size_of::<Key<K>>() as u32;
    let value_size = std::mem::size_of::<V>() as u32;
    let btf = plain_btf(key_size, value_size).context("loading BTF for a block list")?;
    let mut attr = MapCreate {
        map_type: BPF_MAP_TYPE_LPM_TRIE,
        key_size,
        value_size,
        max_entries: entries,
        map_flags: NO_PREALLOC,
        btf_fd: btf.as_raw_fd() as u32,
        btf_key_type_id: 4,
        btf_value_type_id: 6,
        ..MapCreate::default()
    };
    attr.map_name[..13].copy_from_slice(b"dnssink_block");
    let fd = map_create(&attr).context("creating a block list (BPF_MAP_CREATE)")?;
    let map = Map::from_map_data(MapData::from_fd(fd)?)?;
    Ok(LpmTrie::try_from(map)?)
}

fn create_table(buckets: &[Bucket]) -> Result<MapData> {
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    let n = u32::try_from(buckets.len()).context("rule table too large")?;
    let bytes = std::mem::size_of_val(buckets);
    let mut attr = MapCreate {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: std::mem::size_of::<Bucket>() as u32,
        max_entries: n,
        map_flags: dnssink_common::TABLE_MAP_FLAGS,
        ..MapCreate::default()
    };
    attr.map_name[..12].copy_from_slice(b"dnssink_rule");
    let fd = map_create(&attr).map_err(|e| {
        anyhow!("BPF_MAP_CREATE: {e} (is the memlock limit too low for a table this size?)")
    })?;
    let page = 4096;
    let len = bytes.div_ceil(page) * page;
    // SAFETY: a shared mapping of the map's own memory, written within `bytes`, then unmapped.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            0,
        );
        if p == libc::MAP_FAILED {
            bail!("mapping the rule table: {}", io::Error::last_os_error());
        }
        std::ptr::copy_nonoverlapping(buckets.as_ptr() as *const u8, p as *mut u8, bytes);
        libc::munmap(p, len);
    }
    MapData::from_fd(fd).context("opening the rule table")
}

/// The kernel driver of `iface` (`veth`, `virtio_net`...), from the ethtool ioctl.
pub fn driver(iface: &str) -> Option<String> {
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        rest: [u8; 160],
    }
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut DrvInfo,
        _pad: [u8; 16],
    }
    const ETHTOOL_GDRVINFO: u32 = 3;
    if iface.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        rest: [0; 160],
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut info,
        _pad: [0; 16],
    };
    req.name[..iface.len()].copy_from_slice(iface.as_bytes());
    // SAFETY: a plain socket and the SIOCETHTOOL ioctl with buffers that outlive the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return None;
        }
        let r = libc::ioctl(fd, libc::SIOCETHTOOL, &mut req);
        libc::close(fd);
        if r != 0 {
            return None;
        }
    }
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

/// Fails with a clear message unless the process may load and attach XDP programs.
pub fn check_privileges() -> Result<()> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| anyhow!("no CapEff in /proc/self/status"))?;
    let has = |c: u32| eff & (1 << c) != 0;
    if !has(CAP_NET_ADMIN) || !(has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        bail!(
            "dnssink needs root, or the capabilities CAP_BPF and CAP_NET_ADMIN, to load and attach \
             its XDP program: run it with sudo"
        );
    }
    Ok(())
}

/// Fails unless `iface` exists.
pub fn check_interface(iface: &str) -> Result<u32> {
    let c = std::ffi::CString::new(iface).map_err(|_| anyhow!("bad interface name {iface:?}"))?;
    // SAFETY: a NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        bail!(
            "no such interface: {iface} ({})",
            io::Error::last_os_error()
        );
    }
    Ok(idx)
}

/// The subnets of `iface` and of its VLANs (`IFACE.N`): the default clients.
pub fn interface_subnets(iface: &str) -> Result<Vec<ipnet::IpNet>> {
    let mut out: Vec<ipnet::IpNet> = Vec::new();
    for n in interface_nets(iface)? {
        if !out.contains(&n.trunc()) {
            out.push(n.trunc());
        }
    }
    Ok(out)
}

/// The addresses of `iface` and of its VLANs (`IFACE.N`), link-local ones included: the
/// gateway's own, which count as internal resolvers once any `--resolver` is given.
pub fn interface_addresses(iface: &str) -> Result<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = Vec::new();
    for n in interface_nets(iface)? {
        if !out.contains(&n.addr()) {
            out.push(n.addr());
        }
    }
    Ok(out)
}

/// Every address of `iface` and of its VLANs, with its prefix length.
fn interface_nets(iface: &str) -> Result<Vec<ipnet::IpNet>> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list that is read here and freed below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        bail!(
            "reading the addresses of {iface}: {}",
            io::Error::last_os_error()
        );
    }
    let vlan = format!("{iface}.");
    let mut p = ifap;
    while !p.is_null() {
        // SAFETY: a node of the list getifaddrs returned, not yet freed.
        let a = unsafe { &*p };
        p = a.ifa_next;
        if a.ifa_addr.is_null() || a.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(a.ifa_name) }.to_string_lossy();
        if name != iface && !name.starts_with(&vlan) {
            continue;
        }
        // SAFETY: the family says which sockaddr each pointer holds.
        let net = unsafe {
            match i32::from((*a.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let addr = &*(a.ifa_addr as *const libc::sockaddr_in);
                    let mask = &*(a.ifa_netmask as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
                    let len = u32::from_be(mask.sin_addr.s_addr).count_ones() as u8;
                    ipnet::Ipv4Net::new(ip, len).ok().map(ipnet::IpNet::V4)
                }
                libc::AF_INET6 => {
                    let addr = &*(a.ifa_addr as *const libc::sockaddr_in6);
                    let mask = &*(a.ifa_netmask as *const libc::sockaddr_in6);
                    let ip = std::net::Ipv6Addr::from(addr.sin6_addr.s6_addr);
                    let len = u128::from_be_bytes(mask.sin6_addr.s6_addr).count_ones() as u8;
                    ipnet::Ipv6Net::new(ip, len).ok().map(ipnet::IpNet::V6)
                }
                _ => None,
            }
        };
        out.extend(net);
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(ifap) };
    Ok(out)
}

/// What the kernel offers that the programs can use, probed (never read off the version:
/// backports make versions lie).
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// `bpf_xdp_load_bytes` (Linux 5.18): the XDP program copies the message out of the frame
    /// with it; without it, a byte at a time through packet pointers.
    pub load_bytes: bool,
    /// The name walk that branches per byte (`name::walk_branching`), about a third of the
    /// instructions per byte of the branch-free one: tried first, and dropped where the
    /// verifier refuses it (6.1's refused an earlier form of the program built on it).
    pub branching_walk: bool,
    /// TCX (6.6), tried when the TCP program is attached: a kernel without it refuses the
    /// attach type, and the program goes in a tc filter.
    pub tcx: bool,
}

/// Set (to anything), the programs are loaded and attached as for an old kernel: without
/// `bpf_xdp_load_bytes`, with the branch-free name walk, and the TCP program in a tc filter,
/// on any kernel. For tests.
pub const COMPAT: &str = "DNSSINK_COMPAT";

impl Features {
    pub fn probe() -> Features {
        let load_bytes = is_helper_supported(ProgramType::Xdp, BpfHelper::BPF_FUNC_xdp_load_bytes)
            .unwrap_or(false);
        let compat = std::env::var_os(COMPAT).is_some();
        let f = Features {
            load_bytes: load_bytes && !compat,
            branching_walk: !compat,
            tcx: !compat,
        };
        tracing::debug!("kernel features: {f:?}");
        f
    }
}

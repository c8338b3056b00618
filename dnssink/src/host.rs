//! What dnssink learns from the host before it attaches: the kernel's BPF features (probed,
//! never read off the version), the interface's driver and addresses, and the privileges.

use std::{io, net::IpAddr};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported},
};

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
        // The request's type differs between libcs (musl: c_int).
        let r = libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut req);
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

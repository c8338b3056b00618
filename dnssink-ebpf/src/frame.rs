//! Ethernet (up to two VLAN tags), IPv4 (with options) or IPv6 (with extension headers), and
//! UDP to port 53.

use core::mem::MaybeUninit;

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use dnssink_common::{
    counters as c,
    policy::{Flow, PROTO_TCP, PROTO_UDP},
    wire::HEADER_LEN,
};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vlan::VlanHdr,
};

use crate::{
    ptr::{load, read},
    scratch::Scratch,
};

const ETH_P_8021Q: u16 = EtherType::Ieee8021q as u16;
const ETH_P_8021AD: u16 = EtherType::Ieee8021ad as u16;
const ETH_P_IPV4: u16 = EtherType::Ipv4 as u16;
const ETH_P_IPV6: u16 = EtherType::Ipv6 as u16;
const DNS_PORT: u16 = 53;
const MAX_VLAN_TAGS: usize = 2;

/// An IP packet: where its headers are, and what the policy looks at.
pub struct Packet {
    /// Offset of the IP header.
    pub l3: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Length of the IP header in bytes.
    pub ip_len: usize,
    /// End of the IP packet, from its length field.
    pub ip_end: usize,
    /// The transport protocol and destination port (0 when there is no TCP or UDP header:
    /// another protocol, or a later IPv4 fragment).
    pub flow: Flow,
    /// The first of several IPv4 fragments.
    pub first_fragment: bool,
    /// IPv6 extension headers stand before the transport header (`flow` is what follows
    /// them). DNS behind them is not parsed.
    pub ext: bool,
}

/// Where the headers of a DNS query sit in the frame.
pub struct Headers {
    /// Offset of the IP header.
    pub l3: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Length of the IP header in bytes.
    pub ip_len: usize,
    /// Offset of the UDP header.
    pub udp: usize,
    /// Offset of the end of the DNS message, from the UDP length.
    pub end: usize,
}

impl Headers {
    #[inline(always)]
    pub const fn dns(&self) -> usize {
        self.udp + UdpHdr::LEN
    }

    /// The headers in one number, for a global function's argument ([`Headers::unpack`]).
    #[inline(always)]
    pub const fn pack(&self) -> u32 {
        (self.l3 & 0x1f) as u32
            | ((self.ip_len & 0x3f) as u32) << 5
            | (self.v6 as u32) << 11
            | ((self.end & 0xffff) as u32) << 16
    }

    #[inline(always)]
    pub const fn unpack(v: u32) -> Headers {
        let l3 = (v & 0x1f) as usize;
        let ip_len = (v >> 5 & 0x3f) as usize;
        Headers {
            l3,
            v6: v >> 11 & 1 != 0,
            ip_len,
            udp: l3 + ip_len,
            end: (v >> 16) as usize,
        }
    }

    /// The same headers as values the verifier does not know exactly (but within bounds), so
    /// that what follows is verified once, not once per VLAN depth and IP version.
    #[inline(always)]
    pub fn laundered(self, s: &Scratch) -> Headers {
        let l3 = s.launder(self.l3) & 0x1f;
        let ip_len = s.launder(self.ip_len) & 0x3f;
        Headers {
            l3,
            v6: s.launder(self.v6 as usize) & 1 != 0,
            ip_len,
            udp: l3 + ip_len,
            end: self.end,
        }
    }
}

/// Ethernet, up to two VLAN tags, and IPv4 or IPv6 (with its transport ports for TCP and
/// UDP). None for anything else: not ours, passed untouched and not counted.
#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Option<Packet> {
    let eth = read::<EthHdr>(ctx, 0)?;
    let mut ether_type = eth.ether_type;
    let mut l3 = EthHdr::LEN;
    let mut i = 0;
    while i < MAX_VLAN_TAGS {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        let vlan = read::<VlanHdr>(ctx, l3)?;
        ether_type = vlan.ether_type;
        l3 += VlanHdr::LEN;
        i += 1;
    }
    let (v6, ip_len, ip_end, proto, later_fragment, first_fragment) = match ether_type {
        ETH_P_IPV4 => {
            let ip = read::<Ipv4Hdr>(ctx, l3)?;
            let ihl = ((ip.vihl & 0x0f) as usize) * 4;
            if ip.vihl >> 4 != 4 || ihl < Ipv4Hdr::LEN {
                return None;
            }
            let frags = u16::from_be_bytes(ip.frags);
            let end = l3 + u16::from_be_bytes(ip.tot_len) as usize;
            (
                false,
                ihl,
                end,
                ip.proto,
                frags & 0x1fff != 0,
                frags & 0x2000 != 0,
            )
        }
        ETH_P_IPV6 => {
            let ip = read::<Ipv6Hdr>(ctx, l3)?;
            let end = l3 + Ipv6Hdr::LEN + u16::from_be_bytes(ip.payload_len) as usize;
            if is_extension(ip.next_hdr) {
                // Rare on a LAN (MLD's hop-by-hop header, fragments): what follows them is
                // found in a subprogram, and given as a flow only.
                let (proto, dport) = unpack_flow(v6_flow(ctx.ctx, l3 as u32));
                return Some(Packet {
                    l3,
                    v6: true,
                    ip_len: Ipv6Hdr::LEN,
                    ip_end: end,
                    flow: Flow { proto, dport },
                    first_fragment: false,
                    ext: true,
                });
            }
            (true, Ipv6Hdr::LEN, end, ip.next_hdr, false, false)
        }
        _ => return None,
    };
    // TCP and UDP both start with the source and destination ports.
    let dport = match (proto, later_fragment) {
        (PROTO_TCP | PROTO_UDP, false) => {
            read::<[u8; 4]>(ctx, l3 + ip_len).map_or(0, |p| u16::from_be_bytes([p[2], p[3]]))
        }
        _ => 0,
    };
    Some(Packet {
        l3,
        v6,
        ip_len,
        ip_end,
        flow: Flow { proto, dport },
        first_fragment,
        ext: false,
    })
}

/// The IPv6 extension headers that may stand before a transport header: hop-by-hop options,
/// routing, fragment, destination options.
const fn is_extension(next: u8) -> bool {
    matches!(next, 0 | 43 | 44 | 60)
}

/// The most extension headers walked. A longer chain hides its transport: it counts as DNS
/// that cannot be parsed (UDP to port 53), so that it is dropped unless --pass-unparsed.
const MAX_EXTENSIONS: usize = 4;

const fn unpack_flow(v: u32) -> (u8, u16) {
    ((v >> 16) as u8, v as u16)
}

/// The transport protocol and destination port behind the extension headers of the IPv6
/// packet at `l3`, packed as `proto << 16 | port` (port 0 for a later fragment, which has no
/// transport header). A subprogram of plain numbers, reading with `ptr::load`: the verifier
/// checks the walk once, and no packet pointer of unknown range comes out of it.
#[inline(never)]
fn v6_flow(ctx: *mut xdp_md, l3: u32) -> u32 {
    let mut next = [0u8; 1];
    if !load(ctx, l3 as usize + 6, &mut next) {
        return 0;
    }
    let mut next = next[0];
    let mut off = l3 + Ipv6Hdr::LEN as u32;
    let mut later_fragment = false;
    let mut i = 0;
    while i < MAX_EXTENSIONS {
        if !is_extension(next) {
            break;
        }
        let mut h = [0u8; 4];
        if !load(ctx, (off & 0xffff) as usize, &mut h) {
            return 0;
        }
        if next == 44 {
            later_fragment |= u16::from_be_bytes([h[2], h[3]]) >> 3 != 0;
            off += 8;
        } else {
            off += (h[1] as u32 + 1) * 8;
        }
        next = h[0];
        i += 1;
    }
    if is_extension(next) {
        return (PROTO_UDP as u32) << 16 | DNS_PORT as u32;
    }
    if later_fragment || (next != PROTO_TCP && next != PROTO_UDP) {
        return (next as u32) << 16;
    }
    let mut ports = [0u8; 4];
    if !load(ctx, (off & 0xffff) as usize, &mut ports) {
        return (next as u32) << 16;
    }
    (next as u32) << 16 | u16::from_be_bytes([ports[2], ports[3]]) as u32
}

impl Packet {
    #[inline(always)]
    pub const fn is_dns_query(&self) -> bool {
        self.flow.proto == PROTO_UDP && self.flow.dport == DNS_PORT
    }

    /// DNS over TCP that cannot be parsed: behind IPv6 extension headers, or in an IPv4
    /// fragment. The TCP program never sees it.
    #[inline(always)]
    pub const fn is_unparsed_dns_tcp(&self) -> bool {
        self.flow.proto == PROTO_TCP
            && self.flow.dport == DNS_PORT
            && (self.ext || self.first_fragment)
    }

    /// The headers of a DNS query, checked: `Err(counter)` for one that cannot be handled.
    #[inline(always)]
    pub fn dns(&self, ctx: &XdpContext) -> Result<Headers, u32> {
        if self.first_fragment || self.ext {
            return Err(c::UNSUPPORTED);
        }
        let udp = self.l3 + self.ip_len;
        let Some(u) = read::<UdpHdr>(ctx, udp) else {
            return Err(c::TRUNCATED);
        };
        let end = udp + u16::from_be_bytes(u.len) as usize;
        let frame_len = ctx.data_end() - ctx.data();
        // The UDP datagram must fill the IP packet, and the packet must be in the frame.
        if end != self.ip_end || self.ip_end > frame_len || end < udp + UdpHdr::LEN + HEADER_LEN {
            return Err(c::TRUNCATED);
        }
        Ok(Headers {
            l3: self.l3,
            v6: self.v6,
            ip_len: self.ip_len,
            udp,
            end,
        })
    }

    /// The destination address, IPv4 as an IPv4-mapped IPv6 address.
    ///
    /// Copied out (`ptr::load`, with the helper where the kernel has it) rather than read
    /// through a packet pointer, which would carry a range the verifier must keep apart from
    /// other paths for the rest of the program.
    ///
    /// `out` need not be initialised: on true all 16 bytes are written. (Zeroing it first
    /// cost a call to BPF's `memset`, a loop of a byte a turn: LLVM makes any zeroing of 16
    /// bytes one.)
    #[inline(always)]
    pub fn dst<'a>(
        &self,
        ctx: &XdpContext,
        out: &'a mut MaybeUninit<[u8; 16]>,
    ) -> Option<&'a [u8; 16]> {
        // SAFETY: read only once `load_address` has written all of it.
        let a = unsafe { &mut *out.as_mut_ptr() };
        load_address(ctx.ctx, self.l3, self.v6, true, a).then_some(a)
    }
}

/// Copies the source (or destination) address of the IP header at `l3` into `out`, IPv4 as
/// an IPv4-mapped IPv6 address; false if the frame is too short. `out` may be
/// ring-buffer memory: the query log writes the client's address straight into its event.
#[inline(always)]
pub fn load_address(ctx: *mut xdp_md, l3: usize, v6: bool, dst: bool, out: &mut [u8; 16]) -> bool {
    if v6 {
        load(ctx, l3 + if dst { 24 } else { 8 }, out)
    } else {
        // The prefix a byte a store, volatile so that LLVM does not make them a call to
        // BPF's byte-loop `memset` (`out` may be unaligned: an event's field).
        let mut i = 0;
        while i < 12 {
            let b = if i < 10 { 0 } else { 0xff };
            unsafe { core::ptr::write_volatile(out.as_mut_ptr().add(i), b) };
            i += 1;
        }
        let mut a = [0u8; 4];
        let ok = load(ctx, l3 + if dst { 16 } else { 12 }, &mut a);
        out[12..].copy_from_slice(&a);
        ok
    }
}

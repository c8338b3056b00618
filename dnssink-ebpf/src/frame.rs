//! Ethernet (up to two VLAN tags), IPv4 (with options) or IPv6, and UDP to port 53.

use aya_ebpf::programs::XdpContext;
use dnssink_common::{answer::HEADER_LEN, counters as c};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vlan::VlanHdr,
};

use crate::{ptr::read, rules::Scratch};

const ETH_P_8021Q: u16 = EtherType::Ieee8021q as u16;
const ETH_P_8021AD: u16 = EtherType::Ieee8021ad as u16;
const ETH_P_IPV4: u16 = EtherType::Ipv4 as u16;
const ETH_P_IPV6: u16 = EtherType::Ipv6 as u16;
const IPPROTO_UDP: u8 = 17;
const DNS_PORT: u16 = 53;
const MAX_VLAN_TAGS: usize = 2;

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

/// `Ok(None)` for frames that are not UDP to port 53; `Err(counter)` for DNS that cannot be
/// handled.
#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Option<Headers>, u32> {
    let Some(eth) = read::<EthHdr>(ctx, 0) else {
        return Ok(None);
    };
    let mut ether_type = eth.ether_type;
    let mut l3 = EthHdr::LEN;
    let mut i = 0;
    while i < MAX_VLAN_TAGS {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        let Some(vlan) = read::<VlanHdr>(ctx, l3) else {
            return Ok(None);
        };
        ether_type = vlan.ether_type;
        l3 += VlanHdr::LEN;
        i += 1;
    }
    let frame_len = ctx.data_end() - ctx.data();
    let (v6, ip_len, ip_end) = match ether_type {
        ETH_P_IPV4 => {
            let Some(ip) = read::<Ipv4Hdr>(ctx, l3) else {
                return Ok(None);
            };
            let ihl = ((ip.vihl & 0x0f) as usize) * 4;
            if ip.vihl >> 4 != 4 || ihl < Ipv4Hdr::LEN || ip.proto != IPPROTO_UDP {
                return Ok(None);
            }
            let frags = u16::from_be_bytes(ip.frags);
            if frags & 0x1fff != 0 {
                return Ok(None); // a later fragment: no UDP header to look at
            }
            if !is_dns(ctx, l3 + ihl) {
                return Ok(None);
            }
            if frags & 0x2000 != 0 {
                return Err(c::UNSUPPORTED); // the first of several fragments
            }
            (false, ihl, l3 + u16::from_be_bytes(ip.tot_len) as usize)
        }
        ETH_P_IPV6 => {
            let Some(ip) = read::<Ipv6Hdr>(ctx, l3) else {
                return Ok(None);
            };
            // Extension-header chains pass.
            if ip.next_hdr != IPPROTO_UDP || !is_dns(ctx, l3 + Ipv6Hdr::LEN) {
                return Ok(None);
            }
            let payload = u16::from_be_bytes(ip.payload_len) as usize;
            (true, Ipv6Hdr::LEN, l3 + Ipv6Hdr::LEN + payload)
        }
        _ => return Ok(None),
    };
    let udp = l3 + ip_len;
    let Some(u) = read::<UdpHdr>(ctx, udp) else {
        return Err(c::TRUNCATED);
    };
    let end = udp + u16::from_be_bytes(u.len) as usize;
    // The UDP datagram must fill the IP packet, and the packet must be in the frame.
    if end != ip_end || ip_end > frame_len || end < udp + UdpHdr::LEN + HEADER_LEN {
        return Err(c::TRUNCATED);
    }
    Ok(Some(Headers {
        l3,
        v6,
        ip_len,
        udp,
        end,
    }))
}

#[inline(always)]
fn is_dns(ctx: &XdpContext, udp: usize) -> bool {
    match read::<UdpHdr>(ctx, udp) {
        Some(u) => u16::from_be_bytes(u.dst) == DNS_PORT,
        None => false,
    }
}

//! Query frames in, answer frames checked: Ethernet with VLAN tags, IPv4 (with options) or
//! IPv6, UDP, and DNS messages built and parsed with hickory-proto.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context as _, Result, bail, ensure};
use hickory_proto::{
    op::{Edns, Message, Query},
    rr::{Name, RecordType},
};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// How to wrap a DNS message.
#[derive(Clone, Debug)]
pub struct Spec {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// VLAN IDs, outermost first. With two, the outer one is 802.1ad.
    pub vlans: Vec<u16>,
    /// Bytes of IPv4 options (a multiple of 4; NOPs).
    pub ip_options: usize,
}

impl Spec {
    pub fn v4() -> Spec {
        Spec {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            sport: 40000,
            dport: 53,
            vlans: vec![],
            ip_options: 0,
        }
    }

    pub fn v6() -> Spec {
        Spec {
            src: "2001:db8::2".parse().unwrap(),
            dst: "2001:db8::1".parse().unwrap(),
            ..Spec::v4()
        }
    }

    pub fn vlans(mut self, v: &[u16]) -> Spec {
        self.vlans = v.to_vec();
        self
    }
}

/// A query message as a stub resolver sends it.
pub fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(0x4242)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().expect("encode")
}

/// The ones'-complement sum of `data` as 16-bit big-endian words (the last one padded).
pub fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

/// `s` folded to 16 bits.
pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn octets(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The checksum of a transport segment `l4` of protocol `proto` (its checksum field zero),
/// with the pseudo-header.
pub fn l4_checksum(src: &IpAddr, dst: &IpAddr, proto: u8, l4: &[u8]) -> u16 {
    !fold(sum16(&octets(src)) + sum16(&octets(dst)) + proto as u32 + l4.len() as u32 + sum16(l4))
}

/// A frame carrying `payload` as UDP, with correct checksums.
pub fn frame(spec: &Spec, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut udp = Vec::new();
    udp.extend_from_slice(&spec.sport.to_be_bytes());
    udp.extend_from_slice(&spec.dport.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let c = l4_checksum(&spec.src, &spec.dst, 17, &udp);
    udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    ip_frame(spec, 17, &udp)
}

/// A frame carrying the transport segment `l4` of protocol `proto`: Ethernet from the client
/// to the gateway, VLAN tags, and the IP header (IPv4 with its checksum and options).
pub fn ip_frame(spec: &Spec, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&GATEWAY_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    for (i, vid) in spec.vlans.iter().enumerate() {
        let tpid: u16 = if i == 0 && spec.vlans.len() == 2 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    match (spec.src, spec.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let ihl = 20 + spec.ip_options;
            let mut ip = vec![0x40 | (ihl / 4) as u8, 0];
            ip.extend_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]); // id, DF, ttl
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip.extend(std::iter::repeat_n(1u8, spec.ip_options)); // NOP options
            let c = !fold(sum16(&ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed address families"),
    }
    f.extend_from_slice(l4);
    f
}

/// The IPv6 frame of `spec` to port 53 of `proto` with the DNS message `msg` behind the extension
/// headers `chain` (each 8 bytes; a fragment header with offset 0).
pub fn v6_with_extensions(spec: &Spec, msg: &[u8], chain: &[u8], proto: u8) -> Vec<u8> {
    let f = frame(spec, msg);
    let (head, l4) = f.split_at(14 + 40);
    let mut out = head.to_vec();
    let mut next = chain.iter().copied().chain(std::iter::once(proto));
    out[14 + 6] = next.next().unwrap();
    for _ in chain {
        out.extend_from_slice(&[next.next().unwrap(), 0, 0, 0, 0, 0, 0, 0]);
    }
    out.extend_from_slice(l4);
    let plen = (out.len() - 14 - 40) as u16;
    out[14 + 4..14 + 6].copy_from_slice(&plen.to_be_bytes());
    out
}

/// A checked answer frame.
#[derive(Debug)]
pub struct Parsed {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub vlans: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub sport: u16,
    pub dport: u16,
    pub dns: Vec<u8>,
    pub message: Message,
}

/// Parses a frame, checking every length and both checksums (a UDP checksum of zero fails).
pub fn parse(f: &[u8]) -> Result<Parsed> {
    ensure!(f.len() >= 14, "short frame");
    let mut off = 12;
    let mut vlans = Vec::new();
    let mut et = u16::from_be_bytes([f[off], f[off + 1]]);
    while et == 0x8100 || et == 0x88a8 {
        vlans.push((et, u16::from_be_bytes([f[off + 2], f[off + 3]])));
        off += 4;
        et = u16::from_be_bytes([f[off], f[off + 1]]);
    }
    off += 2;
    let (src, dst, ttl, udp_off, udp_end) = match et {
        0x0800 => {
            let ip = &f[off..];
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            ensure!(
                fold(sum16(&ip[..ihl])) == 0xffff,
                "bad IPv4 header checksum"
            );
            let tot = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            ensure!(
                off + tot == f.len(),
                "IPv4 total length {tot} vs frame {}",
                f.len() - off
            );
            ensure!(ip[9] == 17, "not UDP");
            let s = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let d = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(s), IpAddr::V4(d), ip[8], off + ihl, off + tot)
        }
        0x86dd => {
            let ip = &f[off..];
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            ensure!(off + 40 + plen == f.len(), "IPv6 payload length");
            ensure!(ip[6] == 17, "not UDP");
            let s = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
            let d = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
            (
                IpAddr::V6(s),
                IpAddr::V6(d),
                ip[7],
                off + 40,
                off + 40 + plen,
            )
        }
        other => bail!("ethertype {other:#06x}"),
    };
    let udp = &f[udp_off..udp_end];
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    ensure!(
        udp_len == udp.len(),
        "UDP length {udp_len} vs {}",
        udp.len()
    );
    ensure!(udp[6..8] != [0, 0], "UDP checksum is zero");
    // Summed with its checksum in place, a whole segment sums to 0xffff.
    ensure!(l4_checksum(&src, &dst, 17, udp) == 0, "bad UDP checksum");
    let dns = udp[8..].to_vec();
    let message = Message::from_vec(&dns).context("hickory cannot parse the DNS message")?;
    Ok(Parsed {
        dst_mac: f[0..6].try_into().unwrap(),
        src_mac: f[6..12].try_into().unwrap(),
        vlans,
        src,
        dst,
        ttl,
        sport: u16::from_be_bytes([udp[0], udp[1]]),
        dport: u16::from_be_bytes([udp[2], udp[3]]),
        dns,
        message,
    })
}

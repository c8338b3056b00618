//! TCP segments in and out for the TCP program: built with correct checksums, and parsed
//! back with every checksum checked.

use std::net::IpAddr;

use anyhow::{Context as _, Result, ensure};

use crate::frame::{Spec, fold, ip_frame, l4_checksum, sum16};

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// The tc actions.
pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;

/// A segment from the client.
#[derive(Clone, Debug)]
pub struct Seg {
    pub spec: Spec,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// TCP options, a multiple of 4 bytes.
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Options as Linux sends them on a data segment: NOP, NOP, timestamps.
pub fn timestamps(val: u32, ecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&ecr.to_be_bytes());
    o
}

/// A DNS message as it goes over TCP: its length, then the message.
pub fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

fn tcp_sum(src: &IpAddr, dst: &IpAddr, tcp: &[u8]) -> u16 {
    l4_checksum(src, dst, 6, tcp)
}

impl Seg {
    pub fn new(spec: &Spec, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Seg {
        Seg {
            spec: spec.clone(),
            seq,
            ack,
            flags,
            options: timestamps(1000, 2000),
            payload: payload.to_vec(),
        }
    }

    /// The frame, with correct checksums.
    pub fn frame(&self) -> Vec<u8> {
        let s = &self.spec;
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&s.sport.to_be_bytes());
        tcp.extend_from_slice(&s.dport.to_be_bytes());
        tcp.extend_from_slice(&self.seq.to_be_bytes());
        tcp.extend_from_slice(&self.ack.to_be_bytes());
        tcp.push((((20 + self.options.len()) / 4) as u8) << 4);
        tcp.push(self.flags);
        tcp.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]); // window, checksum, urgent
        tcp.extend_from_slice(&self.options);
        tcp.extend_from_slice(&self.payload);
        let c = tcp_sum(&s.src, &s.dst, &tcp);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        ip_frame(s, 6, &tcp)
    }
}

/// A segment the program wrote, its checksums checked.
#[derive(Debug)]
pub struct Out {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Parses a frame the program wrote (no VLAN tags), checking the IPv4 and TCP checksums and
/// every length.
pub fn parse(f: &[u8]) -> Result<Out> {
    ensure!(f.len() >= 14, "no Ethernet header");
    let et = u16::from_be_bytes([f[12], f[13]]);
    let (src, dst, ttl, tcp): (IpAddr, IpAddr, u8, &[u8]) = match et {
        0x0800 => {
            let ip = f.get(14..34).context("IPv4 header")?;
            ensure!(ip[0] == 0x45, "IPv4 version and header length");
            ensure!(fold(sum16(ip)) == 0xffff, "IPv4 header checksum");
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            ensure!(
                14 + total == f.len(),
                "IPv4 length {total} in a frame of {}",
                f.len()
            );
            let s: [u8; 4] = ip[12..16].try_into()?;
            let d: [u8; 4] = ip[16..20].try_into()?;
            (s.into(), d.into(), ip[8], &f[34..])
        }
        0x86dd => {
            let ip = f.get(14..54).context("IPv6 header")?;
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            ensure!(
                54 + plen == f.len(),
                "IPv6 length {plen} in a frame of {}",
                f.len()
            );
            let s: [u8; 16] = ip[8..24].try_into()?;
            let d: [u8; 16] = ip[24..40].try_into()?;
            (s.into(), d.into(), ip[7], &f[54..])
        }
        other => anyhow::bail!("EtherType {other:#x}"),
    };
    ensure!(tcp.len() >= 20, "TCP header");
    ensure!(tcp_sum(&src, &dst, tcp) == 0, "TCP checksum");
    let hl = (tcp[12] >> 4) as usize * 4;
    ensure!(hl >= 20 && hl <= tcp.len(), "TCP header length");
    let word = |i: usize| u32::from_be_bytes([tcp[i], tcp[i + 1], tcp[i + 2], tcp[i + 3]]);
    Ok(Out {
        dst_mac: f[0..6].try_into()?,
        src_mac: f[6..12].try_into()?,
        src,
        dst,
        ttl,
        sport: u16::from_be_bytes([tcp[0], tcp[1]]),
        dport: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: word(4),
        ack: word(8),
        flags: tcp[13],
        options: tcp[20..hl].to_vec(),
        payload: tcp[hl..].to_vec(),
    })
}

/// Runs `f` on a thread of its own in a network namespace of its own: the TCP program's
/// reset to the resolver is cloned into the stack for real, and must meet no host's.
pub fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) on this thread only.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare: {}", std::io::Error::last_os_error());
        // A child forked from this thread is in its namespace: the loopback the program's
        // clone goes to must be up.
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip link");
        assert!(up.success(), "ip link set lo up");
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Runs the TCP program once on `input` through BPF_PROG_TEST_RUN: its action and the frame
/// it leaves. Call it inside [`in_private_netns`].
pub fn test_run(s: &dnssink::bpf::Sinkhole, input: &[u8]) -> (u32, Vec<u8>) {
    crate::run_program(s.tcp_program(), input)
}

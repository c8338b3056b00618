//! Keeping clients on the internal resolvers, and blocked ports and destinations: the maps
//! and the lookups behind `dnssink_common::policy`.

use aya_ebpf::{btf_maps::lpm_trie::Key, programs::XdpContext};
use dnssink_common::policy;

use crate::{
    frame::{Headers, Packet},
    maps::{BLOCK4, BLOCK6, CLIENTS, PORTS, RESOLVERS},
};

/// Whether the query in the frame (its headers packed, `Headers::pack`) may be answered: its source is one of
/// the clients. In a subprogram, so that the verifier checks it once. The context goes as a
/// pointer to `xdp_md`, which is what the BTF of the argument must say for older verifiers
/// (6.1) to accept it.
#[inline(never)]
pub fn from_client(ctx: *mut aya_ebpf::bindings::xdp_md, headers: u32) -> u32 {
    let h = Headers::unpack(headers);
    // Not zeroed (see `Packet::dst`): read only once written whole.
    let mut src = core::mem::MaybeUninit::<[u8; 16]>::uninit();
    let src = unsafe { &mut *src.as_mut_ptr() };
    if !crate::frame::load_address(ctx, h.l3, h.v6, false, src) {
        return 0;
    }
    client_key(src, h.v6)
}

/// Whether `src` (IPv4 as IPv4-mapped IPv6) is among the clients: 1 or 0.
#[inline(always)]
pub fn client_key(src: &[u8; 16], v6: bool) -> u32 {
    // IPv4 clients are keyed as IPv4-mapped addresses: an IPv6 source of that form is none.
    let head = u128::from_be_bytes(*src) >> 32;
    if v6 && head == 0xffff {
        return 0;
    }
    CLIENTS.get(&Key::new(128, *src)).is_some() as u32
}

#[inline(always)]
pub fn to_resolver(dst: &[u8; 16]) -> bool {
    unsafe { RESOLVERS.get(dst) }.is_some()
}

#[inline(always)]
pub fn port_blocked(p: &Packet) -> bool {
    unsafe { PORTS.get(&policy::port_key(p.flow.proto, p.flow.dport)) }.is_some()
}

/// Whether --block-ip covers this packet's destination (and port).
#[inline(always)]
pub fn ip_blocked(p: &Packet, dst: &[u8; 16]) -> bool {
    let rule = if p.v6 {
        BLOCK6.get(0).and_then(|t| t.get(&Key::new(128, *dst)))
    } else {
        let v4 = [dst[12], dst[13], dst[14], dst[15]];
        BLOCK4.get(0).and_then(|t| t.get(&Key::new(32, v4)))
    };
    rule.is_some_and(|r| r.matches(p.flow.proto, p.flow.dport))
}

/// The drop for a packet that is not a DNS query over UDP: by destination, then by port.
#[inline(always)]
pub fn check(ctx: &XdpContext, p: &Packet, enforce: bool) -> Option<u32> {
    let mut dst = core::mem::MaybeUninit::uninit();
    let dst = p.dst(ctx, &mut dst)?;
    if ip_blocked(p, dst) {
        return Some(dnssink_common::counters::DROP_IP);
    }
    policy::by_port(p.flow, enforce, to_resolver(dst), port_blocked(p))
}

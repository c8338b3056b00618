//! The lab's own programs. tc programs make a veth link carry VLAN 100 on both ends, as a
//! VLAN subinterface would, on kernels built without 802.1Q support; the bench's XDP reflector
//! and pass program are below them.
//!
//! Egress pushes the tag (the interface has tx-vlan offload off, so the kernel writes it into
//! the frame, where XDP on the other end reads it). Ingress takes it off again, and drops
//! frames without it: a query or answer that lost its tag never arrives.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    helpers::{bpf_skb_vlan_pop, bpf_skb_vlan_push},
    macros::classifier,
    programs::TcContext,
};

const VID: u16 = 100;
const ETH_P_8021Q: u16 = 0x8100;

#[classifier]
pub fn vlan_push(ctx: TcContext) -> i32 {
    unsafe { bpf_skb_vlan_push(ctx.skb.skb, ETH_P_8021Q.to_be(), VID) };
    TC_ACT_OK
}

#[classifier]
pub fn vlan_pop(ctx: TcContext) -> i32 {
    let skb = unsafe { &*ctx.skb.skb };
    if skb.vlan_present == 0 || skb.vlan_tci & 0x0fff != VID as u32 {
        return TC_ACT_SHOT;
    }
    unsafe { bpf_skb_vlan_pop(ctx.skb.skb) };
    TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

/// Bench only: passes every frame. On the client's veth it lets native-mode XDP_TX on the
/// gateway's veth deliver (a veth drops XDP_TX frames when its peer has no XDP program).
#[aya_ebpf::macros::xdp]
pub fn xdp_pass(_ctx: aya_ebpf::programs::XdpContext) -> u32 {
    aya_ebpf::bindings::xdp_action::XDP_PASS
}

/// Bench only: the trivial reflector. Swaps the MACs, the IPv4 or IPv6 addresses and the UDP
/// ports of every UDP frame and sends it back (swaps leave every checksum valid). It marks
/// the ceiling of the load generator and of XDP itself.
#[aya_ebpf::macros::xdp]
pub fn reflector(ctx: aya_ebpf::programs::XdpContext) -> u32 {
    use aya_ebpf::bindings::xdp_action::{XDP_PASS, XDP_TX};
    let start = ctx.data();
    let end = ctx.data_end();
    if start + 14 > end {
        return XDP_PASS;
    }
    let p = start as *mut u8;
    unsafe {
        let et = u16::from_be_bytes([*p.add(12), *p.add(13)]);
        let (l3, alen, aoff, proto_off, hlen) = match et {
            0x0800 => (14usize, 4usize, 12usize, 9usize, 20usize),
            0x86dd => (14, 16, 8, 6, 40),
            _ => return XDP_PASS,
        };
        if start + l3 + hlen + 8 > end || *p.add(l3 + proto_off) != 17 {
            return XDP_PASS;
        }
        if et == 0x0800 && *p.add(l3) != 0x45 {
            return XDP_PASS;
        }
        for i in 0..6 {
            core::ptr::swap(p.add(i), p.add(6 + i));
        }
        for i in 0..alen {
            core::ptr::swap(p.add(l3 + aoff + i), p.add(l3 + aoff + alen + i));
        }
        let u = l3 + hlen;
        core::ptr::swap(p.add(u), p.add(u + 2));
        core::ptr::swap(p.add(u + 1), p.add(u + 3));
    }
    XDP_TX
}

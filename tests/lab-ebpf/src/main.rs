//! tc programs for the test lab: make a veth link carry VLAN 100 on both ends, as a VLAN
//! subinterface would, on kernels built without 802.1Q support.
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

//! dnssink's XDP program: frame -> headers -> DNS question -> rule lookup -> answer or pass.
//!
//! The logic lives in `dnssink-common`, tested on the host; this crate is the glue that reads
//! and writes the frame, and owns the maps.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod counters;
mod frame;
mod ptr;
mod question;
mod reply;
mod rules;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dnssink_common::counters as c;
use rules::Scratch;

#[xdp]
pub fn dnssink(ctx: XdpContext) -> u32 {
    counters::bump(c::FRAMES);
    match handle(&ctx) {
        Ok(action) => action,
        Err(counter) => {
            counters::bump(counter);
            xdp_action::XDP_PASS
        }
    }
}

/// Returns the action, or the counter that says why the frame passes.
#[inline(always)]
fn handle(ctx: &XdpContext) -> Result<u32, u32> {
    let Some(hdrs) = frame::parse(ctx)? else {
        return Ok(xdp_action::XDP_PASS); // not UDP to port 53: not ours, not counted
    };
    counters::bump(c::DNS);
    let scratch = Scratch::get().ok_or(c::TRUNCATED)?;
    let hdrs = hdrs.laundered(scratch);
    let q = question::parse(ctx, &hdrs, scratch)?;
    let verdict = q.labels.lookup();
    if !verdict.blocked() {
        return Err(if verdict.block() {
            c::ALLOWED
        } else {
            c::PASSED
        });
    }
    let action = reply::send(ctx, &hdrs, &q)?;
    if action == xdp_action::XDP_TX {
        counters::bump(if verdict.subtree() {
            c::ANSWERED_SUBTREE
        } else {
            c::ANSWERED_EXACT
        });
    }
    Ok(action)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

//! dnssink's XDP program: frame -> headers -> DNS question -> rule lookup -> answer or pass.
//!
//! The logic lives in `dnssink-common`, tested on the host; this crate is the glue that reads
//! and writes the frame, and owns the maps.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod counters;
mod enforce;
mod frame;
mod log;
mod ptr;
mod question;
mod reply;
mod rules;
mod tcp;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use dnssink_common::{counters as c, event::level, policy};
use question::Message;
use rules::Scratch;

#[xdp]
pub fn dnssink(ctx: XdpContext) -> u32 {
    counters::bump(c::FRAMES);
    let Some(pkt) = frame::parse(&ctx) else {
        return xdp_action::XDP_PASS; // not IP: not ours, not counted
    };
    let cfg = reply::config();
    let enforce = cfg.is_some_and(|c| c.enforce != 0);
    if !pkt.is_dns_query() {
        // DNS over TCP that the TCP program could not read: dropped, or with --pass-unparsed
        // left to the policy like any other TCP to port 53 (its resolver must be internal).
        if pkt.is_unparsed_dns_tcp() {
            counters::bump(c::UNSUPPORTED);
            let pass = cfg.is_some_and(|c| c.pass_unparsed != 0);
            let drop = policy::unanswered(c::UNSUPPORTED, policy::PASS, pass);
            if drop != policy::PASS {
                return drop_or_pass(Some(drop));
            }
        }
        // Without a policy only DoT and DoQ are dropped, by port: no map to look up.
        if cfg.is_some_and(|c| c.policy != 0) {
            return drop_or_pass(enforce::check(&ctx, &pkt, enforce));
        }
        return drop_or_pass(policy::by_port(pkt.flow, false, false, false));
    }
    counters::bump(c::DNS);
    let Some(scratch) = Scratch::get() else {
        return xdp_action::XDP_PASS;
    };
    // What becomes of the query if it is not answered, decided before the DNS path so that
    // its many exits stay short: its resolver may be blocked, or not an internal one.
    let unanswered = match pkt.dst(&ctx) {
        Some(dst) if cfg.is_some_and(|c| c.policy != 0) => {
            if enforce::ip_blocked(&pkt, &dst) {
                Some(c::DROP_IP)
            } else {
                policy::dns_udp(enforce, enforce::to_resolver(&dst))
            }
        }
        _ => None,
    };
    scratch.set_unanswered(unanswered);
    match answer(&ctx, &pkt, scratch) {
        Ok(action) => action,
        Err(why) => {
            counters::bump(why);
            // Fail closed (`policy::unanswered`): a query that cannot be parsed could carry a
            // blocked name to the resolver, and a blocked name from outside the clients must
            // get no answer at all.
            let unanswered = Scratch::get().map_or(policy::PASS, |s| s.unanswered());
            let pass_unparsed = reply::config().is_some_and(|c| c.pass_unparsed != 0);
            match policy::unanswered(why, unanswered, pass_unparsed) {
                policy::PASS => xdp_action::XDP_PASS,
                drop if drop == why => xdp_action::XDP_DROP,
                drop => drop_or_pass(Some(drop)),
            }
        }
    }
}

#[inline(always)]
fn drop_or_pass(drop: Option<u32>) -> u32 {
    match drop {
        Some(counter) => {
            counters::bump(counter);
            xdp_action::XDP_DROP
        }
        None => xdp_action::XDP_PASS,
    }
}

/// Answers a query for a blocked name: the action, or the counter that says why not.
#[inline(always)]
fn answer(
    ctx: &XdpContext,
    pkt: &frame::Packet,
    scratch: &'static mut Scratch,
) -> Result<u32, u32> {
    let hdrs = pkt.dns(ctx)?;
    let hdrs = hdrs.laundered(scratch);
    // The message's start is copied out of the frame, and its question read there.
    let why = ptr::dnssink_copy_message(ctx.ctx, hdrs.dns() as u32, (hdrs.end - hdrs.dns()) as u32);
    if why != 0 {
        return Err(why);
    }
    let why = question::dnssink_read_question() as u32;
    if why != 0 {
        return Err(why);
    }
    let q = Message::get().ok_or(c::TRUNCATED)?;
    let verdict = scratch.lookup();
    if !verdict.blocked() {
        let why = if verdict.block() || verdict.canary() != 0 {
            c::ALLOWED
        } else {
            c::PASSED
        };
        log::query(ctx, &hdrs, q.name().wire_len, q.qtype, why, level::ALL);
        #[cfg(feature = "log")]
        aya_log_ebpf::debug!(ctx, "passed: qtype {} counter {}", q.qtype, why);
        return Err(why);
    }
    // Never answer a source outside the clients: a spoofed query would make the gateway a
    // reflector.
    if reply::config().is_some_and(|c| c.clients != 0)
        && enforce::from_client(ctx.ctx, hdrs.l3 as u32 | (hdrs.v6 as u32) << 8) == 0
    {
        return Err(c::FOREIGN_CLIENT);
    }
    let canary = verdict.canary();
    let action = reply::send(ctx, &hdrs, canary)?;
    if action == xdp_action::XDP_TX {
        let why = verdict.answered_by();
        counters::bump(why);
        log::query(ctx, &hdrs, q.name().wire_len, q.qtype, why, level::ANSWERED);
        #[cfg(feature = "log")]
        aya_log_ebpf::debug!(ctx, "answered: qtype {} counter {}", q.qtype, why);
    }
    Ok(action)
}

/// DNS over TCP: the tc ingress program beside the XDP one (`tcp`).
#[classifier]
pub fn dnssink_tcp(ctx: TcContext) -> i32 {
    tcp::handle(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

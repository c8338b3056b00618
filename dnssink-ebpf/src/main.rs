//! dnssink's XDP program: frame -> headers -> DNS question -> rule lookup -> answer or pass.
//!
//! The logic lives in `dnssink-common`, tested on the host; this crate is the glue that reads
//! and writes the frame, and owns the maps.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod enforce;
mod frame;
mod log;
mod lookup;
mod maps;
mod ptr;
mod question;
mod reply;
mod scratch;
mod tcp;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use dnssink_common::{config::Config, counters as c, event::level, policy};
use scratch::Scratch;

#[xdp]
pub fn dnssink(ctx: XdpContext) -> u32 {
    maps::bump(c::FRAMES);
    let Some(pkt) = frame::parse(&ctx) else {
        return xdp_action::XDP_PASS; // not IP: not ours, not counted
    };
    // The config, read once for the whole program (the answer builder, a subprogram, reads
    // its own). The slot always exists: the check is for the verifier.
    let Some(cfg) = maps::config() else {
        return xdp_action::XDP_PASS;
    };
    let enforce = cfg.enforce != 0;
    if !pkt.is_dns_query() {
        // DNS over TCP that the TCP program could not read: dropped, or with --pass-unparsed
        // left to the policy like any other TCP to port 53 (its resolver must be internal).
        if pkt.is_unparsed_dns_tcp() {
            maps::bump(c::UNSUPPORTED);
            let drop = policy::unanswered(c::UNSUPPORTED, policy::PASS, cfg.pass_unparsed != 0);
            if drop != policy::PASS {
                return drop_or_pass(Some(drop));
            }
        }
        // Without a policy only DoT and DoQ are dropped, by port: no map to look up.
        if cfg.policy != 0 {
            return drop_or_pass(enforce::check(&ctx, &pkt, enforce));
        }
        return drop_or_pass(policy::by_port(pkt.flow, false, false, false));
    }
    maps::bump(c::DNS);
    let Some(scratch) = maps::scratch() else {
        return xdp_action::XDP_PASS;
    };
    // What becomes of the query if it is not answered, decided before the DNS path so that
    // its many exits stay short: its resolver may be blocked, or not an internal one.
    // Without a policy the destination is not even read.
    let mut dst = core::mem::MaybeUninit::uninit();
    let unanswered = match cfg.policy != 0 {
        true => match pkt.dst(&ctx, &mut dst) {
            Some(dst) if enforce::ip_blocked(&pkt, dst) => Some(c::DROP_IP),
            Some(dst) => policy::dns_udp(enforce, enforce::to_resolver(dst)),
            None => None,
        },
        false => None,
    };
    scratch.set_unanswered(unanswered);
    match answer(&ctx, &pkt, cfg, scratch) {
        Ok(action) => action,
        Err(why) => {
            maps::bump(why);
            // Fail closed (`policy::unanswered`): a query that cannot be parsed could carry a
            // blocked name to the resolver, and a blocked name from outside the clients must
            // get no answer at all.
            let unanswered = maps::scratch().map_or(policy::PASS, |s| s.unanswered());
            match policy::unanswered(why, unanswered, cfg.pass_unparsed != 0) {
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
            maps::bump(counter);
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
    cfg: &Config,
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
    let q = maps::message().ok_or(c::TRUNCATED)?;
    let verdict = lookup::verdict(scratch);
    if !verdict.blocked() {
        let why = if verdict.block() || verdict.canary() != 0 {
            c::ALLOWED
        } else {
            c::PASSED
        };
        log::query(ctx, cfg, &hdrs, q.name().wire_len, q.qtype, why, level::ALL);
        #[cfg(feature = "log")]
        aya_log_ebpf::debug!(ctx, "passed: qtype {} counter {}", q.qtype, why);
        return Err(why);
    }
    // Never answer a source outside the clients: a spoofed query would make the gateway a
    // reflector.
    if cfg.clients != 0 && enforce::from_client(ctx.ctx, hdrs.pack()) == 0 {
        return Err(c::FOREIGN_CLIENT);
    }
    let canary = verdict.canary();
    let action = reply::send(ctx, &hdrs, canary)?;
    if action == xdp_action::XDP_TX {
        let why = verdict.answered_by();
        maps::bump(why);
        log::query(
            ctx,
            cfg,
            &hdrs,
            q.name().wire_len,
            q.qtype,
            why,
            level::ANSWERED,
        );
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

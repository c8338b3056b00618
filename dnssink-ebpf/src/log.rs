//! The query log: one event per answered query (and per passed one at `level::ALL`) in the
//! `EVENTS` ring buffer, which the daemon reads. The answer never waits on it: when the
//! buffer is full the event is dropped and counted.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use dnssink_common::{
    config::Config,
    counters as c,
    event::{Event, NAME_MAX},
    wire::HEADER_LEN,
};

use crate::{
    frame::{Headers, load_address},
    maps,
};

const RB_NO_WAKEUP: u64 = 1;
const RB_FORCE_WAKEUP: u64 = 2;
const RB_AVAIL_DATA: u64 = 0;
const RB_RING_SIZE: u64 = 1;

/// Logs the query in `h` if the configured level is at least `level`. An answered query has
/// been turned into its answer already, so its client is the destination; any other's is
/// the source.
#[inline(always)]
pub fn query(
    ctx: &XdpContext,
    cfg: &Config,
    h: &Headers,
    name_len: usize,
    qtype: u16,
    action: u32,
    level: u8,
) {
    if cfg.log < level {
        return;
    }
    let answered = level == dnssink_common::event::level::ANSWERED;
    // In a global function: the verifier checks the log once, not once per path to it.
    dnssink_log_emit(
        ctx.ctx,
        h.pack(),
        answered as u32,
        name_len as u32,
        (qtype as u32) << 8 | action,
    );
}

/// A global function (of the context and plain numbers, returning one): the verifier checks
/// it once, not at each of its callers with their states.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_log_emit(
    ctx: *mut aya_ebpf::bindings::xdp_md,
    headers: u32,
    answered: u32,
    name_len: u32,
    qtype_action: u32,
) -> u32 {
    let Some(mut entry) = maps::EVENTS.reserve::<Event>(0) else {
        maps::bump(c::LOG_DROPPED);
        return 0;
    };
    let e = entry.as_mut_ptr();
    let h = Headers::unpack(headers);
    // A length the verifier can bound: 1 to NAME_MAX bytes.
    let len = ((name_len.wrapping_sub(1)) & (NAME_MAX as u32 - 1)) + 1;
    // SAFETY: `e` is this event's reserved memory, written within its fields.
    let ok = unsafe {
        (*e).time_ns = bpf_ktime_get_ns();
        (*e).qtype = (qtype_action >> 8) as u16;
        (*e).action = qtype_action as u8;
        (*e)._pad = 0;
        (*e).name_len = len as u16;
        (*e)._pad2 = 0;
        copy_name(&mut (*e).name);
        load_address(ctx, h.l3, h.v6, answered != 0, &mut (*e).client)
    };
    if ok {
        // Waking the reader costs more than the rest of the program (about 16 µs a query
        // here). The daemon drains the buffer every 100 ms anyway; it is woken only once the
        // buffer is a quarter full, so that a burst cannot fill it before the next drain.
        let flags = if maps::EVENTS.query(RB_AVAIL_DATA) >= maps::EVENTS.query(RB_RING_SIZE) / 4 {
            RB_FORCE_WAKEUP
        } else {
            RB_NO_WAKEUP
        };
        entry.submit(flags);
    } else {
        entry.discard(0);
    }
    0
}

/// The name in wire form from this CPU's message, and what follows it there up to `out`'s
/// size (the reader takes `name_len` bytes). A fixed copy of whole words, with no branch:
/// the verifier walks it once, and a query costs 32 loads and stores.
#[inline(always)]
fn copy_name(out: &mut [u8; NAME_MAX]) {
    let Some(m) = maps::message() else {
        return;
    };
    let mut i = 0;
    while i < NAME_MAX / 8 {
        let at = HEADER_LEN + i * 8;
        let mut w = [0u8; 8];
        w.copy_from_slice(&m.bytes[at..at + 8]);
        out[i * 8..i * 8 + 8].copy_from_slice(&w);
        i += 1;
    }
}

/// Logs a query over TCP that was answered: the client, and the name read into this CPU's
/// message.
#[inline(always)]
pub fn tcp_query(client: &[u8; 16], wire_len: u16, qtype: u16, action: u32) {
    if maps::config().is_none_or(|cfg| cfg.log < dnssink_common::event::level::ANSWERED) {
        return;
    }
    let Some(mut entry) = maps::EVENTS.reserve::<Event>(0) else {
        maps::bump(c::LOG_DROPPED);
        return;
    };
    let e = entry.as_mut_ptr();
    let len = ((wire_len as usize).wrapping_sub(1) & (NAME_MAX - 1)) + 1;
    // SAFETY: `e` is this event's reserved memory, written within its fields.
    unsafe {
        (*e).time_ns = bpf_ktime_get_ns();
        (*e).client = *client;
        (*e).qtype = qtype;
        (*e).action = action as u8;
        (*e)._pad = 0;
        (*e).name_len = len as u16;
        (*e)._pad2 = 0;
        copy_name(&mut (*e).name);
    }
    entry.submit(RB_NO_WAKEUP);
}

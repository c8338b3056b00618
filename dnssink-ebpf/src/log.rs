//! The query log: one event per answered query (and per passed one at `level::ALL`) in the
//! `EVENTS` ring buffer, which the daemon reads. The answer never waits on it: when the
//! buffer is full the event is dropped and counted.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use dnssink_common::{
    config::Config,
    counters as c,
    event::{Event, NAME_MAX},
};

use crate::{
    frame::{Headers, load_address},
    maps,
};

const RB_NO_WAKEUP: u64 = 1;
const RB_FORCE_WAKEUP: u64 = 2;
const RB_AVAIL_DATA: u64 = 0;
const RB_RING_SIZE: u64 = 1;
const RB_CONS_POS: u64 = 2;

/// How to submit an event: wake the reader once the buffer is a quarter full, and then not
/// again on this CPU until the reader has read on. The reader drains on a tick of its own, so
/// below a quarter no event wakes it; past a quarter, one wakeup suffices, and a wakeup per
/// event (an inter-processor interrupt each, which in a VM exits to the host: about 16 us a
/// query here) cost the bench's stage breakdown 3.8 us a blocked answer on average, with the
/// reader draining between batches.
#[inline(always)]
fn wakeup() -> u64 {
    if maps::EVENTS.query(RB_AVAIL_DATA) < maps::EVENTS.query(RB_RING_SIZE) / 4 {
        return RB_NO_WAKEUP;
    }
    let read = maps::EVENTS.query(RB_CONS_POS) + 1;
    match maps::scratch() {
        Some(s) if s.woken_at() == read => RB_NO_WAKEUP,
        Some(s) => {
            s.set_woken_at(read);
            RB_FORCE_WAKEUP
        }
        None => RB_FORCE_WAKEUP,
    }
}

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
        copy_name(&mut (*e).name, len as usize);
        load_address(ctx, h.l3, h.v6, answered != 0, &mut (*e).client)
    };
    if ok {
        entry.submit(wakeup());
    } else {
        entry.discard(0);
    }
    0
}

/// The name in wire form from this CPU's message, `len` bytes of it (1 to NAME_MAX) rounded
/// up to whole words. Only the words the name fills are written: an event has room for the
/// longest name, 256 bytes over four cache lines of the ring, and writing them all (a fixed
/// copy of 32 words) cost a logged query about 95 ns in the bench's stage breakdown, most of
/// it in cache misses on ring memory that the reader had touched. The rest of the room keeps
/// what it held; the reader takes `name_len` bytes.
#[inline(always)]
fn copy_name(out: &mut [u8; NAME_MAX], len: usize) {
    let Some(m) = maps::message() else {
        return;
    };
    let words = (len + 7) / 8;
    let mut i = 0;
    // The constant bound is hidden from LLVM, which would otherwise drop it as implied by
    // `i < words`: verifiers as old as 6.1 learn no bound from that compare of two registers.
    while dnssink_common::hide(i as u64) < (NAME_MAX / 8) as u64 {
        if i >= words {
            break;
        }
        let at = dnssink_common::hide(i as u64) as usize & (NAME_MAX / 8 - 1);
        // SAFETY: `out` is an event's name, 8-aligned (`event::Event`), and `at` a word in it.
        unsafe {
            out.as_mut_ptr()
                .cast::<u64>()
                .add(at)
                .write(m.name_word(at))
        };
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
        copy_name(&mut (*e).name, len);
    }
    entry.submit(wakeup());
}

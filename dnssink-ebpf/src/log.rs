//! The query log: one event per answered query (and per passed one at `level::ALL`) in the
//! `EVENTS` ring buffer, which the daemon reads. The answer never waits on it: when the
//! buffer is full the event is dropped and counted.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, generated::bpf_xdp_load_bytes},
    macros::map,
    maps::RingBuf,
    programs::XdpContext,
};
use dnssink_common::{
    answer::HEADER_LEN,
    counters as c,
    event::{Event, NAME_MAX},
};

use crate::{
    counters,
    frame::{Headers, load_address},
    reply,
};

const RB_NO_WAKEUP: u64 = 1;
const RB_FORCE_WAKEUP: u64 = 2;
const RB_AVAIL_DATA: u64 = 0;
const RB_RING_SIZE: u64 = 1;

/// Room for about 900 events; userspace may size it with `--log-buffer`.
#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

/// Logs the query in `h` if the configured level is at least `level`. An answered query has
/// been turned into its answer already, so its client is the destination; any other's is
/// the source.
#[inline(always)]
pub fn query(ctx: &XdpContext, h: &Headers, name_len: usize, qtype: u16, action: u32, level: u8) {
    if reply::config().is_none_or(|cfg| cfg.log < level) {
        return;
    }
    let answered = level == dnssink_common::event::level::ANSWERED;
    // In a subprogram: the verifier checks the log once, not once per path that reaches it.
    emit(
        ctx.ctx,
        h.l3 as u32 | (h.v6 as u32) << 16 | (answered as u32) << 17,
        (h.dns() + HEADER_LEN) as u32,
        name_len as u32,
        (qtype as u32) << 8 | action,
    );
}

#[inline(never)]
fn emit(
    ctx: *mut aya_ebpf::bindings::xdp_md,
    l3_v6_dst: u32,
    name_off: u32,
    name_len: u32,
    qtype_action: u32,
) {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        counters::bump(c::LOG_DROPPED);
        return;
    };
    let e = entry.as_mut_ptr();
    let l3 = l3_v6_dst & 0xff;
    let v6 = l3_v6_dst & (1 << 16) != 0;
    let dst = l3_v6_dst & (1 << 17) != 0;
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
        load_address(ctx, l3 as usize, v6, dst, &mut (*e).client)
            && bpf_xdp_load_bytes(ctx, name_off, (*e).name.as_mut_ptr().cast(), len) == 0
    };
    if ok {
        // Waking the reader costs more than the rest of the program (about 16 µs a query
        // here). The daemon drains the buffer every 100 ms anyway; it is woken only once the
        // buffer is a quarter full, so that a burst cannot fill it before the next drain.
        let flags = if EVENTS.query(RB_AVAIL_DATA) >= EVENTS.query(RB_RING_SIZE) / 4 {
            RB_FORCE_WAKEUP
        } else {
            RB_NO_WAKEUP
        };
        entry.submit(flags);
    } else {
        entry.discard(0);
    }
}

/// Logs a query over TCP that was answered: the client, and the name in wire form at
/// `HEADER_LEN` of the message read into `msg`.
#[inline(always)]
pub fn tcp_query(
    client: &[u8; 16],
    msg: &[u8; crate::tcp::MSG_MAX],
    wire_len: u16,
    qtype: u16,
    action: u32,
) {
    if reply::config().is_none_or(|cfg| cfg.log < dnssink_common::event::level::ANSWERED) {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        counters::bump(c::LOG_DROPPED);
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
        let mut i = 0;
        while i < NAME_MAX {
            (*e).name[i] = if i < len {
                msg[(HEADER_LEN + i) & (crate::tcp::MSG_MAX - 1)]
            } else {
                0
            };
            i += 1;
        }
    }
    entry.submit(RB_NO_WAKEUP);
}

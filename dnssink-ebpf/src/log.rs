//! The query log: one event per answered query (and per passed one at `level::ALL`) in the
//! `EVENTS` ring buffer, which the daemon reads. The answer never waits on it: when the
//! buffer is full the event is dropped and counted.

use core::mem::MaybeUninit;

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use dnssink_common::{
    config::Config,
    counters as c,
    event::{Event, HEAD_LEN, NAME_MAX, room_words},
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

/// How often (in events, on one CPU) the fill of the buffer is looked at.
const LOOK_EVERY: u64 = 8;

/// How to submit an event: wake the reader once the buffer is a quarter full, and then not
/// again on this CPU until the reader has read on. The reader drains on a tick of its own, so
/// below a quarter no event wakes it; past a quarter, one wakeup suffices, and a wakeup per
/// event (an inter-processor interrupt each, which in a VM exits to the host: about 16 us a
/// query here) cost the bench's stage breakdown 3.8 us a blocked answer on average, with the
/// reader draining between batches.
///
/// The fill is looked at on every `LOOK_EVERY`th event of a CPU only: it is the reader's
/// position, on a cache line that the reader writes (about 10 ns a logged answer in the
/// bench's stage breakdown). A quarter of the smallest buffer (`--log-buffer`, 4 KiB) holds
/// 14 events or more.
#[inline(always)]
fn wakeup() -> u64 {
    let Some(s) = maps::scratch() else {
        return RB_FORCE_WAKEUP;
    };
    if !s.count_logged(LOOK_EVERY) {
        return RB_NO_WAKEUP;
    }
    if maps::EVENTS.query(RB_AVAIL_DATA) < maps::EVENTS.query(RB_RING_SIZE) / 4 {
        return RB_NO_WAKEUP;
    }
    let read = maps::EVENTS.query(RB_CONS_POS) + 1;
    if s.woken_at() == read {
        return RB_NO_WAKEUP;
    }
    s.set_woken_at(read);
    RB_FORCE_WAKEUP
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
    let h = Headers::unpack(headers);
    // The client, read before the event is reserved: its paths (v4 or v6, source or
    // destination) join again before those of the event's rooms begin.
    let mut client = MaybeUninit::<[u64; 2]>::uninit();
    // SAFETY: 16 bytes, all written by `load_address` when it succeeds.
    let client = unsafe {
        if !load_address(
            ctx,
            h.l3,
            h.v6,
            answered != 0,
            &mut *client.as_mut_ptr().cast(),
        ) {
            return 0;
        }
        client.assume_init()
    };
    emit(
        name_len as usize,
        (qtype_action >> 8) as u16,
        qtype_action as u8,
        client,
    );
    0
}

/// Logs a query over TCP that was answered: the client, and the name read into this CPU's
/// message.
#[inline(always)]
pub fn tcp_query(client: &[u8; 16], wire_len: u16, qtype: u16, action: u32) {
    if maps::config().is_none_or(|cfg| cfg.log < dnssink_common::event::level::ANSWERED) {
        return;
    }
    // SAFETY: 16 bytes.
    let client = unsafe { client.as_ptr().cast::<[u64; 2]>().read_unaligned() };
    emit(wire_len as usize, qtype, action as u8, client);
}

/// An event in the ring buffer: its head, as [`Event`] lays it out, and room for `W` words
/// of name (`event::ROOM_WORDS`).
#[repr(C)]
struct Room<const W: usize> {
    head: [u64; HEAD_LEN / 8],
    name: [u64; W],
}

/// Logs an event for the query whose name, `name_len` bytes, is in this CPU's message, in the
/// smallest room that holds the name (`event::room_words`). `client` is the client's address
/// (IPv4 as IPv4-mapped IPv6), in memory order.
#[inline(always)]
fn emit(name_len: usize, qtype: u16, action: u8, client: [u64; 2]) {
    // A length the verifier can bound: 1 to NAME_MAX bytes.
    let len = (name_len.wrapping_sub(1) & (NAME_MAX - 1)) + 1;
    // Each room has its own reserve, of a size the verifier knows.
    match room_words(len) {
        4 => emit_in::<4>(len, qtype, action, client),
        8 => emit_in::<8>(len, qtype, action, client),
        16 => emit_in::<16>(len, qtype, action, client),
        _ => emit_in::<32>(len, qtype, action, client),
    }
}

#[inline(always)]
fn emit_in<const W: usize>(len: usize, qtype: u16, action: u8, client: [u64; 2]) {
    let Some(m) = maps::message() else {
        return;
    };
    let Some(mut entry) = maps::EVENTS.reserve::<Room<W>>(0) else {
        maps::bump(c::LOG_DROPPED);
        return;
    };
    let r = entry.as_mut_ptr();
    let e = r.cast::<Event>();
    // SAFETY: `r` is this event's reserved memory; through `e` only the head is written,
    // which `Room` lays out as `Event` does (`HEAD_LEN`), and the name into `r`'s room.
    unsafe {
        (&raw mut (*e).time_ns).write(bpf_ktime_get_ns());
        (&raw mut (*e).qtype).write(qtype);
        (&raw mut (*e).action).write(action);
        (&raw mut (*e)._pad).write(0);
        (&raw mut (*e).name_len).write(len as u16);
        (&raw mut (*e)._pad2).write(0);
        // The client's field is 8-aligned (at 8 in `Event`): two stores.
        let at = (&raw mut (*e).client).cast::<u64>();
        at.write(client[0]);
        at.add(1).write(client[1]);
    }
    let wakeup = wakeup();
    // Only the words the name fills (up to W), a word per load and store; the rest of the
    // room keeps what it held, and the reader takes `name_len` bytes. Last, so that each of
    // the loop's exits, which the verifier walks apart, has only the submit after it.
    let words = len.div_ceil(8);
    let mut i = 0;
    // The constant bound is hidden from LLVM, which would otherwise drop it as implied by
    // `i < words`: verifiers as old as 6.1 learn no bound from that compare of two registers.
    while dnssink_common::hide(i as u64) < W as u64 {
        if i >= words {
            break;
        }
        let at = dnssink_common::hide(i as u64) as usize & (W - 1);
        // SAFETY: a word of this event's room.
        unsafe { (&raw mut (*r).name[at]).write(m.name_word(at)) };
        i += 1;
    }
    entry.submit(wakeup);
}

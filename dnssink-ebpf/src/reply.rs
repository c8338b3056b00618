//! Turns the query frame into the answer, in place: swap the addresses, fix the lengths and
//! checksums, write the header and the records after the question.

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    helpers::bpf_xdp_adjust_tail,
    programs::XdpContext,
};
use dnssink_common::{
    answer::{self, TAIL_MAX, Template},
    counters as c,
    csum::{self, Sum},
    wire::{HEADER_LEN, ip4, ip6, udp},
};

use crate::{
    frame::Headers,
    maps,
    ptr::{Span, read, write},
    question,
};

/// The response settings, written by userspace.

const TTL: u8 = 64;

/// [`dnssink_reply`]'s mark of a counter rather than an action.
const NOT_SENT: u32 = 1 << 16;

/// Turns the query in the frame, whose headers are `h`, into the answer to the question read
/// into this CPU's message: the action, XDP_TX or XDP_DROP should a write fail after the
/// frame was resized; `Err(counter)` leaves the frame untouched, to pass.
#[inline(always)]
pub fn send(ctx: &XdpContext, h: &Headers, canary: u8) -> Result<u32, u32> {
    // Measured here, where the frame's pointers are plain: in the global function LLVM
    // would fold the subtraction into arithmetic on the end pointer, which the verifier
    // refuses.
    let frame_len = (ctx.data_end() - ctx.data()) as u32;
    match dnssink_reply(ctx.ctx, h.pack(), canary as u32, frame_len) {
        v if v & NOT_SENT != 0 => Err(v & !NOT_SENT),
        action => Ok(action),
    }
}

/// [`send`], in a global function (of the context and plain numbers): the verifier checks the
/// answer once, on its own, and its locals are not on the stack under the caller's.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_reply(
    ctx: *mut xdp_md,
    headers: u32,
    canary: u32,
    frame_len: u32,
) -> u32 {
    let ctx = XdpContext::new(ctx);
    let h = Headers::unpack(headers);
    match build_and_send(&ctx, &h, canary as u8, (frame_len & 0xffff) as i32) {
        Ok(action) => action,
        Err(why) => why | NOT_SENT,
    }
}

#[inline(always)]
fn build_and_send(ctx: &XdpContext, h: &Headers, canary: u8, frame_len: i32) -> Result<u32, u32> {
    let (Some(cfg), Some(q)) = (maps::config(), maps::message()) else {
        return Err(c::TX_FAILED);
    };
    // The answer was built by userspace for this config: this program fills in the query's
    // ID and RD bit, and the checksum from the sums kept with it.
    let t = answer::template_index(canary, q.qtype, q.edns != 0);
    let t = maps::template(cfg.answers, t).ok_or(c::TX_FAILED)?;
    let name = q.name();
    // Addresses and ports only swap places, so their sum is taken from the query.
    let mut sum = Sum::new();
    if h.v6 {
        let a = read::<[u8; 32]>(ctx, h.l3 + ip6::SRC).ok_or(c::TRUNCATED)?;
        sum.add_bytes(&a, 0);
    } else {
        let a = read::<[u8; 8]>(ctx, h.l3 + ip4::SRC).ok_or(c::TRUNCATED)?;
        sum.add_bytes(&a, 0);
    }
    let ports = read::<[u8; 4]>(ctx, h.udp + udp::SRC_PORT).ok_or(c::TRUNCATED)?;
    sum.add_bytes(&ports, 0);
    let name_sum = question::dnssink_name_sum() as u32;
    let udp_csum = t.udp_checksum(&q.query, sum, &name, name_sum, q.qtype, q.qclass);

    let msg_len = t.message_len(&name);
    let new_len = h.dns() + msg_len;
    let delta = new_len as i32 - frame_len;
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return Err(c::TX_FAILED);
    }
    let header = t.header(&q.query);
    if rewrite(ctx, h, name.wire_len, t, &header, msg_len, udp_csum).is_none() {
        // Cannot happen once the tail fits; never send a half-written frame.
        maps::bump(c::TX_FAILED);
        return Ok(xdp_action::XDP_DROP);
    }
    maps::bump(c::answered_as(t.kind as u32));
    Ok(xdp_action::XDP_TX)
}

#[inline(always)]
fn rewrite(
    ctx: &XdpContext,
    h: &Headers,
    wire_len: usize,
    t: &Template,
    header: &[u8; HEADER_LEN],
    msg_len: usize,
    udp_csum: u16,
) -> Option<()> {
    let udp_len = (udp::HEADER_LEN + msg_len) as u16;
    // Each header is checked once, as a span, and its fields written in it.
    // Ethernet: swap the MACs.
    Span::<12>::at(ctx, 0)?.swap::<6>(0, 6);
    // IP: swap the addresses, reset the TTL, set the length.
    if h.v6 {
        let ip = Span::<40>::at(ctx, h.l3)?;
        ip.swap::<16>(ip6::SRC, ip6::DST);
        ip.put(ip6::PAYLOAD_LEN, udp_len.to_be_bytes());
        ip.put(ip6::HOP_LIMIT, TTL);
    } else {
        let ip = Span::<20>::at(ctx, h.l3)?;
        ip.swap::<4>(ip4::SRC, ip4::DST);
        // The checksum updated for the two words that change (RFC 1624), not summed anew.
        let word = |at: usize| u16::from_be_bytes(ip.get(at));
        let old = [word(ip4::TOTAL_LEN), word(ip4::TTL)];
        let new = [
            h.ip_len as u16 + udp_len,
            (TTL as u16) << 8 | (old[1] & 0xff),
        ];
        let checksum = csum::update(word(ip4::CHECKSUM), &old, &new);
        ip.put(ip4::TOTAL_LEN, new[0].to_be_bytes());
        ip.put(ip4::TTL, TTL);
        ip.put(ip4::CHECKSUM, checksum.to_be_bytes());
    }
    // UDP: swap the ports, set the length and checksum; and the DNS header after it.
    let u = Span::<{ udp::HEADER_LEN + HEADER_LEN }>::at(ctx, h.udp)?;
    u.swap::<2>(udp::SRC_PORT, udp::DST_PORT);
    u.put(udp::LEN, udp_len.to_be_bytes());
    u.put(udp::CHECKSUM, udp_csum.to_be_bytes());
    u.put(udp::HEADER_LEN, *header);
    // DNS: the records after the question.
    let tail = h.dns() + HEADER_LEN + (wire_len & 0x1ff) + 4;
    // Eight bytes a store while whole words fit, then the rest a byte at a time.
    // Read from map memory: bounded for the verifier.
    let len = t.len as usize & (TAIL_MAX - 1);
    let words = len / 8;
    let mut i = 0;
    while i < TAIL_MAX / 8 {
        if i >= words {
            break;
        }
        let at = (i * 8) & (TAIL_MAX - 8);
        // SAFETY: a word of the tail, which is 8-aligned (`Template`): one load.
        let w = unsafe { t.tail.as_ptr().add(at).cast::<u64>().read() };
        write(ctx, tail + at, w.to_ne_bytes()).then_some(())?;
        i += 1;
    }
    // The last 0 to 7 bytes. The loop's constant bound is hidden from LLVM, which would
    // otherwise drop it (and the index's mask) as implied by `j < len`: verifiers as old as 6.1
    // learn no bound from that compare of two registers, and would walk the loop unbounded.
    let mut k = 0;
    while dnssink_common::hide(k) < 8 {
        let j = words * 8 + k as usize;
        if j >= len {
            break;
        }
        let at = dnssink_common::hide(j as u64) as usize & (TAIL_MAX - 1);
        write(ctx, tail + at, t.tail[at]).then_some(())?;
        k += 1;
    }
    Some(())
}

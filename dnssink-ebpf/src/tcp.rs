//! DNS over TCP to port 53: a tc ingress program on the same NIC, verified on its own. It
//! follows each connection from a client by its sequence numbers and reads every message's
//! question (`dnssink_common::tcp` decides). A blocked name in the first message gets the
//! sinkhole answer in the stream, with FIN, and the resolver's side of the connection a reset
//! (it never sees the question, and holds no half-open connection); what cannot be answered
//! right is reset both ways. Everything else passes untouched.
//!
//! XDP runs first: DNS over TCP to resolvers that are not internal ones, behind IPv6
//! extension headers or in IPv4 fragments, never reaches this program.
//!
//! The segment is read and written with `bpf_skb_load_bytes` and `bpf_skb_store_bytes` into
//! per-CPU buffers, never through packet pointers: the verifier then tracks no packet range,
//! and nonlinear buffers are read like linear ones.

use core::ptr::{addr_of, addr_of_mut};

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, TC_ACT_SHOT},
    helpers::generated::{
        bpf_clone_redirect, bpf_csum_diff, bpf_redirect, bpf_skb_change_tail, bpf_skb_load_bytes,
        bpf_skb_store_bytes,
    },
    programs::TcContext,
};
use dnssink_common::{
    answer, counters as c,
    name::MAX_WIRE,
    policy::PROTO_TCP,
    tcp::{self, ACK, FIN, FlowKey, FlowState, PSH, Place, RST, SYN},
    wire::HEADER_LEN,
};

use crate::{
    enforce, log, maps,
    question::{self, MSG_MAX, MSG_READ},
};

const ETH_LEN: u32 = 14;
const DNS_PORT: u16 = 53;
const BPF_F_INGRESS: u64 = 1;
const TTL: u8 = 64;

/// The answer's payload: a length prefix and the message.
const OUT_MAX: usize = 512;
/// The IP and TCP headers (60 bytes at most each).
const HDR_MAX: usize = 128;

/// Per-CPU working memory for one segment.
#[repr(C)]
pub struct TcpScratch {
    /// The IP and TCP headers as they came.
    orig: [u8; HDR_MAX],
    /// The IP and TCP headers of the segment being written.
    hdr: [u8; HDR_MAX],
    /// The answer's payload.
    out: [u8; OUT_MAX],
    /// The segment being read.
    seg: Segment,
    /// The rule that blocks the name read into the message (`question::Message`): its
    /// canary flag, and the counter of what answers it.
    canary: u8,
    answered_by: u8,
    _pad: [u8; 6],
}

/// Where the headers of a client's segment to port 53 are, and its TCP fields.
#[repr(C)]
struct Segment {
    l3: u32,
    v6: bool,
    ip_len: u32,
    tcp_len: u32,
    /// Offset of the data, and its length.
    data: u32,
    len: u32,
    seq: u32,
    ack: u32,
    flags: u32,
    key: FlowKey,
}

#[inline(always)]
fn load<const N: usize>(skb: *mut __sk_buff, off: u32) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    let r = unsafe { bpf_skb_load_bytes(skb.cast(), off, b.as_mut_ptr().cast(), N as u32) };
    (r == 0).then_some(b)
}

#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

#[inline(always)]
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Reads the headers of a TCP segment to port 53 over IPv4 or IPv6, after up to two VLAN
/// tags, into the scratch: both headers into `orig`, their fields into `seg`. False for
/// anything else. Everything lands in map memory, not on the stack, which the tc program
/// shares with the subprograms it calls.
#[inline(always)]
fn parse_segment(skb: *mut __sk_buff, s: &mut TcpScratch) -> bool {
    parse_into(skb, s).is_some()
}

#[inline(always)]
fn parse_into(skb: *mut __sk_buff, s: &mut TcpScratch) -> Option<()> {
    const M: usize = HDR_MAX - 1;
    let mut l3 = ETH_LEN;
    let mut et = be16(&load::<2>(skb, 12)?, 0);
    let mut i = 0;
    while i < 2 {
        if et != 0x8100 && et != 0x88a8 {
            break;
        }
        et = be16(&load::<2>(skb, l3 + 2)?, 0);
        l3 += 4;
        i += 1;
    }
    let o = &mut s.orig;
    let (v6, ip_len, ip_end) = match et {
        0x0800 => {
            if unsafe { bpf_skb_load_bytes(skb.cast(), l3, o.as_mut_ptr().cast(), 20) } != 0 {
                return None;
            }
            let ihl = (o[0] & 0x0f) as u32 * 4;
            // Fragments never get here as DNS (XDP drops them, unless --pass-unparsed).
            if o[0] >> 4 != 4 || ihl < 20 || o[9] != PROTO_TCP || be16(&o[..], 6) & 0x3fff != 0 {
                return None;
            }
            (false, ihl, l3 + be16(&o[..], 2) as u32)
        }
        0x86dd => {
            if unsafe { bpf_skb_load_bytes(skb.cast(), l3, o.as_mut_ptr().cast(), 40) } != 0 {
                return None;
            }
            if o[6] != PROTO_TCP {
                return None;
            }
            (true, 40, l3 + 40 + be16(&o[..], 4) as u32)
        }
        _ => return None,
    };
    let t = load::<20>(skb, l3 + ip_len)?;
    if be16(&t, 2) != DNS_PORT {
        return None;
    }
    let tcp_len = (t[12] >> 4) as u32 * 4;
    let data = l3 + ip_len + tcp_len;
    let skb_len = unsafe { (*skb).len };
    if tcp_len < 20 || ip_end < data || ip_end > skb_len {
        return None;
    }
    // Both headers, for the rewrite: at most 120 bytes.
    let n = (ip_len + tcp_len) & M as u32;
    if n == 0 {
        return None;
    }
    let n = dnssink_common::helper_len(n, HDR_MAX as u32);
    if unsafe { bpf_skb_load_bytes(skb.cast(), l3, o.as_mut_ptr().cast(), n) } != 0 {
        return None;
    }
    let g = &mut s.seg;
    g.l3 = l3;
    g.v6 = v6;
    g.ip_len = ip_len;
    g.tcp_len = tcp_len;
    g.data = data;
    g.len = ip_end - data;
    g.seq = be32(&t, 4);
    g.ack = be32(&t, 8);
    g.flags = t[13] as u32;
    g.key.client_port = be16(&t, 0);
    g.key.server_port = DNS_PORT;
    let k = &mut g.key;
    if v6 {
        k.client.copy_from_slice(&s.orig[8..24]);
        k.server.copy_from_slice(&s.orig[24..40]);
    } else {
        k.client[..10].fill(0);
        k.client[10] = 0xff;
        k.client[11] = 0xff;
        k.client[12..].copy_from_slice(&s.orig[12..16]);
        k.server[..10].fill(0);
        k.server[10] = 0xff;
        k.server[11] = 0xff;
        k.server[12..].copy_from_slice(&s.orig[16..20]);
    }
    Some(())
}

/// The TCP program: see the module's documentation.
#[inline(always)]
pub fn handle(ctx: &TcContext) -> i32 {
    let skb = ctx.skb.skb;
    let Some(s) = maps::tcp_scratch() else {
        return TC_ACT_OK;
    };
    if !parse_segment(skb, s) {
        return TC_ACT_OK;
    }
    let seg = &s.seg;
    let flags = seg.flags as u8;
    if flags & RST != 0 {
        let _ = maps::TCP_FLOWS.remove(&seg.key);
        return TC_ACT_OK;
    }
    if flags & SYN != 0 {
        if flags & ACK == 0 {
            let _ = maps::TCP_FLOWS.insert(&seg.key, &FlowState::opened(seg.seq), 0);
            if seg.len != 0 {
                // TCP Fast Open: a resolver that takes data in a SYN would get the question
                // unread. The SYN goes on without it: the resolver acknowledges only the SYN,
                // and the client sends the data again after the handshake, where it is read.
                maps::bump(c::TCP_SYN_DATA);
                return dnssink_tcp_hold_back(skb);
            }
        }
        return TC_ACT_OK;
    }
    if seg.len == 0 {
        if flags & FIN != 0 {
            let _ = maps::TCP_FLOWS.remove(&seg.key);
        }
        return TC_ACT_OK;
    }
    maps::bump(c::TCP_SEGMENTS);
    let mut st = unsafe { maps::TCP_FLOWS.get(&seg.key) }
        .copied()
        .unwrap_or(FlowState::unseen(seg.seq));
    let mut off = match tcp::place(&st, seg.seq, seg.len as usize) {
        Place::Gap => {
            maps::bump(c::TCP_OUT_OF_ORDER);
            return TC_ACT_SHOT;
        }
        Place::Before => return TC_ACT_OK,
        Place::At(off) => off as u32,
    };
    let cfg = maps::config();
    let pass_unparsed = cfg.is_some_and(|c| c.pass_unparsed != 0);
    let client =
        cfg.is_none_or(|c| c.clients == 0) || enforce::client_key(&seg.key.client, seg.v6) != 0;
    let (seq, len, data) = (seg.seq, seg.len, seg.data);
    let mut k = 0;
    while k < tcp::MAX_MESSAGES {
        // The message's length, from its prefix, or from the segment the prefix came in.
        let (body, msg_len) = if st.pending != 0 {
            (off, st.pending - 1)
        } else {
            if len - off < 2 {
                return dnssink_tcp_reset(skb, c::TRUNCATED);
            }
            let Some(p) = load::<2>(skb, data + (off & 0xffff)) else {
                return TC_ACT_OK;
            };
            let l = be16(&p, 0) as u32;
            if len - off == 2 {
                st.next = seq.wrapping_add(off + 2);
                st.pending = l + 1;
                let _ = maps::TCP_FLOWS.insert(&s.seg.key, &st, 0);
                return TC_ACT_OK;
            }
            (off + 2, l)
        };
        st.pending = 0;
        let read = unpack_read(dnssink_tcp_read_message(
            skb,
            data + body,
            (len - body).min(msg_len),
        ));
        let first = k == 0 && st.messages == 0;
        match tcp::fate(read, first, client, pass_unparsed) {
            tcp::Fate::Pass => {
                if let Err(why) = read {
                    maps::bump(why);
                }
                st.messages = st.messages.saturating_add(1);
                let end = body + msg_len;
                st.next = seq.wrapping_add(end);
                if end >= len {
                    let _ = maps::TCP_FLOWS.insert(&s.seg.key, &st, 0);
                    return TC_ACT_OK;
                }
                off = end;
            }
            tcp::Fate::Answer => return dnssink_tcp_answer(skb),
            tcp::Fate::Reset => return dnssink_tcp_reset(skb, read.err().unwrap_or(c::TCP_RESET)),
        }
        k += 1;
    }
    // More messages in one segment than the program reads.
    dnssink_tcp_reset(skb, c::TCP_RESET)
}

/// `dnssink_tcp_read_message`'s result as a number: a blocked flag with bit 32 set, or a counter.
const fn unpack_read(v: u64) -> Result<bool, u32> {
    if v >> 32 != 0 {
        Ok(v & 1 != 0)
    } else {
        Err(v as u32)
    }
}

/// Reads the message at `at`, of which `avail` bytes are in this segment, into the scratch,
/// and its question into the scratch's fields: whether its name is blocked (see
/// [`unpack_read`]), or the counter for a message that is no query or cannot be read (a
/// question cut by the segment's end is `TRUNCATED`).
///
/// A global function (exported, of the context and plain numbers): the verifier checks it
/// once, on its own, rather than at each of the loop's calls with the caller's state. The
/// name walk in it is most of the program's verification cost.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_tcp_read_message(skb: *mut __sk_buff, at: u32, avail: u32) -> u64 {
    match read_question(skb, at, avail) {
        Ok(blocked) => 1 << 32 | blocked as u64,
        Err(why) => why as u64,
    }
}

#[inline(always)]
fn read_question(skb: *mut __sk_buff, at: u32, avail: u32) -> Result<bool, u32> {
    let (Some(s), Some(m)) = (maps::tcp_scratch(), maps::message()) else {
        return Err(c::TRUNCATED);
    };
    // HEADER_LEN to MSG_READ bytes: the verifier must see the length bounded, never zero.
    let n = avail.min(MSG_READ as u32);
    if n < HEADER_LEN as u32 {
        return Err(c::TRUNCATED);
    }
    if unsafe { bpf_skb_load_bytes(skb.cast(), at, m.bytes.as_mut_ptr().cast(), n) } != 0 {
        return Err(c::TRUNCATED);
    }
    m.set_len(n as usize);
    match question::dnssink_read_question() as u32 {
        0 => {}
        why => return Err(why),
    }
    let verdict = crate::lookup::verdict(maps::scratch().ok_or(c::TRUNCATED)?);
    s.canary = verdict.canary();
    s.answered_by = verdict.answered_by() as u8;
    Ok(verdict.blocked())
}

/// `write_headers`: the segment goes on to the resolver, as the client's...
const TO_SERVER: u32 = 0;
/// ... or back to the client, as the resolver's. (Above the TCP flags.)
const TO_CLIENT: u32 = 0x100;

/// Answers the blocked name read into the scratch: a reset to the resolver, cloned up the
/// stack, then the sinkhole answer with FIN to the client. A global function: see
/// `dnssink_tcp_reply`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_tcp_answer(skb: *mut __sk_buff) -> i32 {
    // Built in a function of its own, so that the answer's locals are not on the stack
    // under the reply's.
    let built = dnssink_tcp_build_answer(skb);
    if built == 0 {
        return TC_ACT_SHOT;
    }
    let action = dnssink_tcp_reply(skb, built as u32 & 0xffff);
    if action == TC_ACT_SHOT {
        return action;
    }
    maps::bump(c::ANSWERED_TCP);
    maps::bump((built >> 16) as u32 & 0xff);
    maps::bump(c::answered_as((built >> 24) as u32 & 0xff));
    if let (Some(s), Some(m)) = (maps::tcp_scratch(), maps::message()) {
        log::tcp_query(&s.seg.key.client, m.wire_len, m.qtype, c::ANSWERED_TCP);
    }
    action
}

/// Writes the answer's payload into the scratch's `out`: its length, with the counter of
/// the rule that answered above it (`<< 16`) and the kind of answer (`<< 24`); 0 if there is
/// no config.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_tcp_build_answer(_skb: *mut __sk_buff) -> u64 {
    let (Some(s), Some(m), Some(cfg)) = (maps::tcp_scratch(), maps::message(), maps::config())
    else {
        return 0;
    };
    let a = answer::build(cfg, &m.query, m.qtype, m.edns != 0, s.canary);
    let qlen = m.name().wire_len + 4;
    let msg_len = HEADER_LEN + qlen + (a.len & (answer::TAIL_MAX - 1));
    // The payload: the length prefix, the header, the question as the client sent it, and
    // the records. Each copy has a fixed length, so that the verifier walks it once (a loop
    // that stops at a variable length forks its paths at every byte): the question's copy
    // runs on past the question, the records overwrite what it wrote there, and their
    // buffer's zeros (at least three past the records) end the payload for the checksum.
    s.out[..2].copy_from_slice(&(msg_len as u16).to_be_bytes());
    s.out[2..2 + HEADER_LEN].copy_from_slice(&a.header);
    let mut j = 0;
    while j < MAX_WIRE + 4 {
        s.out[(2 + HEADER_LEN + j) & (OUT_MAX - 1)] = m.bytes[(HEADER_LEN + j) & (MSG_MAX - 1)];
        j += 1;
    }
    let mut t = 0;
    while t < answer::TAIL_MAX {
        s.out[(2 + HEADER_LEN + qlen + t) & (OUT_MAX - 1)] = a.tail[t];
        t += 1;
    }
    (2 + msg_len) as u64 | (s.answered_by as u64) << 16 | (a.kind() as u64) << 24
}

/// Takes the data out of the client's segment in the scratch (a SYN with data) and passes it
/// on without: headers, lengths and checksums rewritten, flags and numbers as they were.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_tcp_hold_back(skb: *mut __sk_buff) -> i32 {
    let Some(s) = maps::tcp_scratch() else {
        return TC_ACT_SHOT;
    };
    let (data, seq, ack, flags) = (s.seg.data, s.seg.seq, s.seg.ack, s.seg.flags & 0xff);
    if unsafe { bpf_skb_change_tail(skb, data, 0) } != 0
        || dnssink_tcp_write_headers(skb, TO_SERVER | flags, 0, seq, ack) != 0
    {
        // Never pass the data unread.
        maps::bump(c::TX_FAILED);
        return TC_ACT_SHOT;
    }
    TC_ACT_OK
}

/// Resets the connection both ways: what cannot be answered right gets a fast failure, never
/// the resolver's answer. `why` is counted too when it says more than a plain reset.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_tcp_reset(skb: *mut __sk_buff, why: u32) -> i32 {
    maps::bump(c::TCP_RESET);
    if why != c::TCP_RESET {
        maps::bump(why);
    }
    dnssink_tcp_reply(skb, 0)
}

/// Sends a reset on to the resolver, as the client's, up the stack; then turns the segment
/// into the one back to the client and redirects it out of the interface: with `payload`
/// bytes of the scratch's `out` and FIN, or a reset when `payload` is 0. The flow is
/// forgotten. TC_ACT_SHOT (and `tx_failed`) if a helper fails.
///
/// This and the other `dnssink_tcp_*` functions are global (exported, of the context and plain
/// numbers): each is verified once, on its own, not at every call with the caller's state.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_tcp_reply(skb: *mut __sk_buff, payload: u32) -> i32 {
    match reply_inner(skb, payload) {
        Some(action) => action,
        None => {
            maps::bump(c::TX_FAILED);
            TC_ACT_SHOT
        }
    }
}

#[inline(always)]
fn reply_inner(skb: *mut __sk_buff, payload: u32) -> Option<i32> {
    let s = maps::tcp_scratch()?;
    let _ = maps::TCP_FLOWS.remove(&s.seg.key);
    let (data, seq, ack, len, fin) = (
        s.seg.data,
        s.seg.seq,
        s.seg.ack,
        s.seg.len,
        s.seg.flags as u8 & FIN != 0,
    );
    let ifindex = unsafe { (*skb).ifindex };
    // The resolver's side: the client's segment, as a reset without data.
    if unsafe { bpf_skb_change_tail(skb, data, 0) } != 0 {
        return None;
    }
    if dnssink_tcp_write_headers(skb, TO_SERVER | (RST | ACK) as u32, 0, seq, ack) != 0 {
        return None;
    }
    if unsafe { bpf_clone_redirect(skb, ifindex, BPF_F_INGRESS) } != 0 {
        return None;
    }
    // The client's side.
    let (seq, ack) = tcp::reply_numbers(seq, ack, len, fin);
    let flags = if payload == 0 {
        RST | ACK
    } else {
        ACK | PSH | FIN
    };
    let payload = payload & (OUT_MAX as u32 - 1);
    if unsafe { bpf_skb_change_tail(skb, data + payload, 0) } != 0 {
        return None;
    }
    if dnssink_tcp_write_headers(skb, TO_CLIENT | flags as u32, payload, seq, ack) != 0 {
        return None;
    }
    let s = maps::tcp_scratch()?;
    if payload != 0 {
        let n = dnssink_common::helper_len(payload, OUT_MAX as u32);
        if unsafe { bpf_skb_store_bytes(skb, data, s.out.as_ptr().cast(), n, 0) } != 0 {
            return None;
        }
    }
    let macs = load::<12>(skb, 0)?;
    let mut swapped = [0u8; 12];
    swapped[..6].copy_from_slice(&macs[6..]);
    swapped[6..].copy_from_slice(&macs[..6]);
    if unsafe { bpf_skb_store_bytes(skb, 0, swapped.as_ptr().cast(), 12, 0) } != 0 {
        return None;
    }
    Some(unsafe { bpf_redirect(ifindex, 0) } as i32)
}

/// The sum of `n` bytes at `p` (a multiple of four, at most 512) added to `seed`.
#[inline(always)]
fn csum(p: *const u8, n: u32, seed: u32) -> u32 {
    unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, p as *mut u32, n, seed) as u32 }
}

/// The checksum of a sum made by [`csum`]: in the order the words were read, so it is stored
/// as is.
#[inline(always)]
fn fold(sum: u32) -> [u8; 2] {
    let mut s = (sum & 0xffff) + (sum >> 16);
    s = (s & 0xffff) + (s >> 16);
    (!(s as u16)).to_ne_bytes()
}

/// Writes the IP and TCP headers of a segment made from the client's (in the scratch), with
/// `payload` bytes of data from the scratch's `out`, into the frame, checksums included.
/// `to_flags` is `TO_SERVER` or `TO_CLIENT` with the TCP flags. 0, or 1 if it cannot.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_tcp_write_headers(
    skb: *mut __sk_buff,
    to_flags: u32,
    payload: u32,
    seq: u32,
    ack: u32,
) -> u32 {
    match write_headers_inner(skb, to_flags, payload, seq, ack) {
        Some(()) => 0,
        None => 1,
    }
}

#[inline(always)]
fn write_headers_inner(
    skb: *mut __sk_buff,
    to_flags: u32,
    payload: u32,
    seq: u32,
    ack: u32,
) -> Option<()> {
    const M: usize = HDR_MAX - 1;
    let s = maps::tcp_scratch()?;
    let to_client = to_flags & TO_CLIENT != 0;
    let flags = to_flags as u8;
    let mut w = 0;
    while w < HDR_MAX / 8 {
        let at = w * 8;
        let mut word = [0u8; 8];
        word.copy_from_slice(&s.orig[at..at + 8]);
        s.hdr[at..at + 8].copy_from_slice(&word);
        w += 1;
    }
    let seg = &s.seg;
    let ip = seg.ip_len as usize & 0x3f;
    let tl = seg.tcp_len as usize & 0x3f;
    let h = &mut s.hdr;
    // Addresses and ports.
    if to_client {
        let (a, len) = if seg.v6 { (8, 16) } else { (12, 4) };
        let mut i = 0;
        while i < 16 {
            if i >= len {
                break;
            }
            h.swap((a + i) & M, (a + len + i) & M);
            i += 1;
        }
        h.swap(ip & M, (ip + 2) & M);
        h.swap((ip + 1) & M, (ip + 3) & M);
    }
    // The IP header: length, hop limit, checksum.
    let tcp_total = (tl as u32 + payload) as u16;
    if seg.v6 {
        h[4..6].copy_from_slice(&tcp_total.to_be_bytes());
        if to_client {
            h[7] = TTL;
        }
    } else {
        h[2..4].copy_from_slice(&(ip as u16 + tcp_total).to_be_bytes());
        if to_client {
            h[8] = TTL;
        }
        h[10] = 0;
        h[11] = 0;
        let sum = fold(csum(h.as_ptr(), ip as u32, 0));
        h[10] = sum[0];
        h[11] = sum[1];
    }
    // TCP: numbers, flags, no urgent data; of the options only timestamps stay (their values
    // swapped), the rest become no-ops, in a segment back to the client.
    put(h, ip + 4, seq.to_be_bytes());
    put(h, ip + 8, ack.to_be_bytes());
    h[(ip + 13) & M] = flags;
    h[(ip + 16) & M] = 0;
    h[(ip + 17) & M] = 0;
    h[(ip + 18) & M] = 0;
    h[(ip + 19) & M] = 0;
    if to_client {
        options_for_client(h, ip, tl);
    }
    // The TCP checksum: pseudo-header, header, data.
    let pseudo = [0, PROTO_TCP, (tcp_total >> 8) as u8, tcp_total as u8];
    let mut sum = if seg.v6 {
        csum(addr_of!(h[8]), 32, 0)
    } else {
        csum(addr_of!(h[12]), 8, 0)
    };
    sum = csum(pseudo.as_ptr(), 4, sum);
    sum = csum(addr_of!(h[ip & M]), tl as u32, sum);
    if payload != 0 {
        // Rounded up to a multiple of four for `bpf_csum_diff`: zeros follow the payload.
        let n = ((payload + 3) & !3) & (OUT_MAX as u32 - 1);
        sum = csum(s.out.as_ptr(), n, sum);
    }
    let folded = fold(sum);
    h[(ip + 16) & M] = folded[0];
    h[(ip + 17) & M] = folded[1];
    let n = ((ip + tl) & M) as u32;
    if n == 0 {
        return None;
    }
    let n = dnssink_common::helper_len(n, HDR_MAX as u32);
    if unsafe { bpf_skb_store_bytes(skb, seg.l3, addr_of_mut!(s.hdr).cast(), n, 0) } != 0 {
        return None;
    }
    Some(())
}

/// Writes `b` at `at` in the headers, every index masked into range.
#[inline(always)]
fn put<const N: usize>(h: &mut [u8; HDR_MAX], at: usize, b: [u8; N]) {
    let mut i = 0;
    while i < N {
        h[(at + i) & (HDR_MAX - 1)] = b[i];
        i += 1;
    }
}

/// The options of a segment back to the client: no-ops, but for a timestamp where Linux puts
/// it (`NOP NOP TS` first), which gets the client's echo as its value and the client's value
/// as its echo. One flat pass: a walk option by option would fork the verifier's paths at
/// every option.
#[inline(always)]
fn options_for_client(h: &mut [u8; HDR_MAX], ip: usize, tl: usize) {
    // (`tl`: the header's length, options included.)
    const M: usize = HDR_MAX - 1;
    const NOP: u8 = 1;
    let ts = tl >= 32
        && h[(ip + 20) & M] == NOP
        && h[(ip + 21) & M] == NOP
        && h[(ip + 22) & M] == 8
        && h[(ip + 23) & M] == 10;
    if ts {
        let mut b = 0;
        while b < 4 {
            h.swap((ip + 24 + b) & M, (ip + 28 + b) & M);
            b += 1;
        }
    }
    // Past the options, up to 60, no-ops land in the buffer beyond what is written out.
    let from = if ts { 32 } else { 20 };
    let mut i = 20;
    while i < 60 {
        if i >= from {
            h[(ip + i) & M] = NOP;
        }
        i += 1;
    }
}

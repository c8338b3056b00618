//! The DNS header and the question, read by the shared parsers from the message's first
//! bytes, which each program copies into per-CPU memory first ([`Message`]): the XDP program
//! from the frame (`ptr::dnssink_copy_message`), the TCP program from its segment. What
//! follows the question is not parsed: only whether it starts with an OPT record, which the
//! answer echoes.
//!
//! Verifier: the name is walked in map memory, never through packet pointers, by one of the
//! two walks of `dnssink_common::name` ([`BRANCHING_WALK`]). Each byte read through a packet
//! pointer is a branch on a pointer range the verifier keeps per path, so that paths no
//! longer prune against each other: that cost about 830 verified instructions per byte of
//! name. In map memory each index is masked into the buffer.

use core::ptr::{read_volatile, write_volatile};

use dnssink_common::{
    counters as c,
    name::{self, MAX_WIRE, Name, NameError},
    query::{self, Query},
    wire::HEADER_LEN,
};

use crate::maps;

/// The message buffer, a power of two so that an index can be masked into it.
pub const MSG_MAX: usize = 512;
/// Bytes of a message read: its header, the longest name, its type and class, and the start
/// of an OPT record.
pub const MSG_READ: usize = HEADER_LEN + MAX_WIRE + 4 + 3;

/// The start of one DNS message, and the question read from it.
#[repr(C)]
pub struct Message {
    /// Places the name (`HEADER_LEN` bytes into `bytes`) on a word boundary, so that the
    /// query log copies it a word per load and store (`NAME_AT`).
    _lead: [u8; 4],
    /// The message from its header on; `len` of them copied.
    pub bytes: [u8; MSG_MAX],
    len: u64,
    pub query: Query,
    pub qtype: u16,
    pub qclass: u16,
    /// Bytes of the name on the wire.
    pub wire_len: u16,
    /// The query carries an OPT record: the answer gets one.
    pub edns: u8,
    _pad: u8,
    _pad2: u32,
}

/// Where the name starts in a [`Message`], which is 8-aligned as a map value: a multiple of 8.
pub const NAME_AT: usize = core::mem::offset_of!(Message, bytes) + HEADER_LEN;
const _: () = assert!(NAME_AT % 8 == 0);

// SAFETY: each CPU has its own value, and a program runs one packet at a time on a CPU,
// without preemption (the TCP program runs after the XDP program is done with a packet).
unsafe impl Sync for Message {}

impl Message {
    /// Says that `n` bytes of the message are in `bytes`.
    #[inline(always)]
    pub fn set_len(&mut self, n: usize) {
        unsafe { write_volatile(&mut self.len, n as u64) };
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        unsafe { read_volatile(&self.len) as usize }
    }

    /// The `i`th word of the name and what follows it (`i` below 32), by one aligned load.
    #[inline(always)]
    pub fn name_word(&self, i: usize) -> u64 {
        let at = (i & 31) * 8;
        // SAFETY: within `bytes` (12 + 256 of 512), and 8-aligned (`NAME_AT`).
        unsafe {
            self.bytes
                .as_ptr()
                .add(HEADER_LEN + at)
                .cast::<u64>()
                .read()
        }
    }

    /// The walked name, with its length bounded for the verifier.
    #[inline(always)]
    pub fn name(&self) -> Name {
        Name {
            wire_len: unsafe { read_volatile(&self.wire_len) } as usize & 0x1ff,
        }
    }
}

impl dnssink_common::Packet for Message {
    #[inline(always)]
    fn size(&self) -> usize {
        self.len() & (MSG_MAX - 1)
    }

    #[inline(always)]
    fn at(&self, off: usize) -> u8 {
        self.bytes[off & (MSG_MAX - 1)]
    }
}

/// Reads the header and the question of this CPU's [`Message`] into its fields, and the
/// name's label hashes into the [`Scratch`]: 0, or the counter of a message that is no query
/// or cannot be parsed.
///
/// A global function (exported, of plain numbers): the verifier checks it once, on its own,
/// for both programs and whatever their paths to it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_read_question() -> u64 {
    match read_question() {
        Ok(()) => 0,
        Err(why) => why as u64,
    }
}

#[inline(always)]
fn read_question() -> Result<(), u32> {
    let (Some(m), Some(labels)) = (maps::message(), maps::scratch()) else {
        return Err(c::TRUNCATED);
    };
    if m.len() < HEADER_LEN {
        return Err(c::TRUNCATED);
    }
    let mut hdr = [0u8; HEADER_LEN];
    hdr.copy_from_slice(&m.bytes[..HEADER_LEN]);
    let query = query::check_header(&hdr)?;
    let walked = if maps::branching_walk() {
        name::walk_branching(&*m, HEADER_LEN, labels)
    } else {
        name::walk(&*m, HEADER_LEN, labels)
    }
    .map_err(NameError::counter)?;
    let q = HEADER_LEN + (labels.launder(walked.wire_len) & 0x1ff);
    if q + 4 > m.len() {
        return Err(c::TRUNCATED);
    }
    let b = |i: usize| m.bytes[i & (MSG_MAX - 1)];
    let qtype = u16::from_be_bytes([b(q), b(q + 1)]);
    // Any class and any type: a blocked name is answered however it is asked.
    let qclass = u16::from_be_bytes([b(q + 2), b(q + 3)]);
    let edns = query::has_opt(&*m, q + 4, query.arcount);
    m.query = query;
    m.qtype = qtype;
    m.qclass = qclass;
    m.wire_len = walked.wire_len as u16;
    m.edns = edns as u8;
    Ok(())
}

/// The checksum part of the name read into this CPU's message, as it sits in a UDP datagram
/// (8 + `HEADER_LEN` bytes in), for the answer. A global function: its loop stops at the
/// name's length, and each of its exits would otherwise fork what follows in the caller.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_name_sum() -> u64 {
    match maps::message() {
        Some(m) => name::checksum_part(|i| m.name_word(i), m.name().wire_len) as u64,
        None => 0,
    }
}

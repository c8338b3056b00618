//! Which messages dnssink answers: the header checks, and whether EDNS follows the question.
//! The question's name is walked in `name`.

use crate::{
    Packet, counters as c,
    wire::{FLAG_QR, HEADER_LEN, MASK_OPCODE, TYPE_OPT},
};

/// The fields of a query header that the answer needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub flags: u16,
    pub arcount: u16,
}

/// Accepts a query: QR=0, OPCODE=0 (QUERY) and one question. `Err(counter)` says why not:
/// `NOT_QUERY` for a message that is no query (a response, UPDATE, NOTIFY...), which passes;
/// `QUESTIONS` for a query with no question or several, which cannot be parsed.
///
/// Nothing else in the header matters: whatever the TC bit and the other section counts say,
/// a blocked name gets the sinkhole answer, whose header is written anew.
#[inline(always)]
pub fn check_header(h: &[u8; HEADER_LEN]) -> Result<Query, u32> {
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let flags = word(2);
    if flags & (FLAG_QR | MASK_OPCODE) != 0 {
        return Err(c::NOT_QUERY);
    }
    if word(4) != 1 {
        return Err(c::QUESTIONS);
    }
    Ok(Query {
        id: word(0),
        flags,
        arcount: word(10),
    })
}

/// Whether the query carries EDNS: its first additional record, at `off`, is an OPT record
/// (the root name, then TYPE 41). Its version, options and anything after it are not
/// looked at: the answer gets an OPT record of version 0 without options either way, and a
/// blocked name is answered whatever follows its question.
#[inline(always)]
pub fn has_opt<P: Packet + ?Sized>(pkt: &P, off: usize, arcount: u16) -> bool {
    arcount != 0
        && off + 3 <= pkt.size()
        && pkt.at(off) == 0
        && pkt.at(off + 1) == (TYPE_OPT >> 8) as u8
        && pkt.at(off + 2) == TYPE_OPT as u8
}

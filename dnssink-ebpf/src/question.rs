//! The DNS header and the question, checked by the shared parsers. What follows the question
//! is not parsed: only whether it starts with an OPT record, which the answer echoes.

use aya_ebpf::programs::XdpContext;
use dnssink_common::{
    answer::{self, HEADER_LEN, Query},
    counters as c,
    name::{self, Name, NameError},
};

use crate::{
    frame::Headers,
    ptr::{Frame, read},
    rules::Scratch,
};

pub struct Question {
    pub query: Query,
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
    /// The query carries an OPT record: the answer gets one.
    pub edns: bool,
    /// The label hashes of `name`, in per-CPU scratch memory.
    pub labels: &'static Scratch,
}

#[inline(always)]
pub fn parse(
    ctx: &XdpContext,
    h: &Headers,
    scratch: &'static mut Scratch,
) -> Result<Question, u32> {
    let dns = h.dns();
    let hdr = read::<[u8; HEADER_LEN]>(ctx, dns).ok_or(c::TRUNCATED)?;
    let query = answer::check_header(&hdr)?;
    let qname = dns + HEADER_LEN;
    // The name starts 8 + 12 bytes into the UDP datagram: that places its bytes for the sum.
    let walked =
        name::walk(&Frame(ctx), qname, 8 + HEADER_LEN, scratch).map_err(NameError::counter)?;
    let name = Name {
        wire_len: scratch.launder(walked.wire_len) & 0x1ff,
        csum: walked.csum,
    };
    let q = qname + name.wire_len;
    if q + 4 > h.end {
        return Err(c::TRUNCATED);
    }
    let tc = read::<[u8; 4]>(ctx, q).ok_or(c::TRUNCATED)?;
    let qtype = u16::from_be_bytes([tc[0], tc[1]]);
    // Any class and any type: a blocked name is answered however it is asked.
    let qclass = u16::from_be_bytes([tc[2], tc[3]]);
    let edns = answer::has_opt(&Frame(ctx), q + 4, query.arcount);
    Ok(Question {
        query,
        name,
        qtype,
        qclass,
        edns,
        labels: scratch,
    })
}

//! The answer dnssink builds for a blocked name (which queries it answers is `query`).
//!
//! The answer keeps the query's ID, RD bit and question section byte for byte (so the case of
//! the name the client sent, DNS 0x20, comes back as sent). Whatever followed the question is
//! replaced by the [`Answer::tail`]: an answer record, or an SOA in the authority section for a
//! negative answer, and an OPT record when the query had one.

use crate::{
    config::{Config, response},
    csum::Sum,
    name::Name,
    query::Query,
    wire::*,
};

/// Room for the longest tail: an SOA record (50 bytes) and an OPT record (11).
pub const TAIL_MAX: usize = 64;
/// The SOA's MNAME: `dnssink.invalid.` (RFC 6761: never resolves).
const SOA_MNAME: &[u8; 17] = b"\x07dnssink\x07invalid\x00";
/// Offset of the question name in the message, as a compression pointer.
const PTR_QNAME: u16 = 0xC000 | HEADER_LEN as u16;

/// The header and the records that follow the question in an answer.
///
/// 8-byte aligned with `tail` first, on 32-bit targets too: [`clear`] zeroes it eight bytes
/// a store, which verifiers on architectures without cheap unaligned access (MIPS, older ARM)
/// accept only aligned.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The records after the question; bytes past `len` are zero.
    pub tail: [u8; TAIL_MAX],
    pub len: usize,
    pub header: [u8; HEADER_LEN],
}

const _: () = assert!(core::mem::offset_of!(Answer, tail) == 0);

/// Zeroes the tail eight bytes a store. Assigning `[0; TAIL_MAX]` became a call to BPF's
/// `memset`, a loop of one byte a turn (64 turns, about 5% of a blocked answer's time); the
/// stores are volatile so that LLVM does not merge them back into that call.
#[inline(always)]
fn clear(tail: &mut [u8; TAIL_MAX]) {
    let p = tail.as_mut_ptr() as *mut u64;
    let mut i = 0;
    while i < TAIL_MAX / 8 {
        // SAFETY: `tail` is 8-byte aligned (asserted above) and TAIL_MAX bytes long.
        unsafe { core::ptr::write_volatile(p.add(i), 0) };
        i += 1;
    }
}

struct Writer<'a> {
    buf: &'a mut [u8; TAIL_MAX],
    n: usize,
}

impl Writer<'_> {
    /// One byte. Volatile, so that LLVM does not merge runs of zero bytes into a call to
    /// BPF's byte-loop `memset`.
    #[inline(always)]
    fn u8(&mut self, v: u8) {
        let at = &mut self.buf[self.n & (TAIL_MAX - 1)];
        // SAFETY: a byte of `buf`.
        unsafe { core::ptr::write_volatile(at, v) };
        self.n += 1;
    }
    #[inline(always)]
    fn u16(&mut self, v: u16) {
        let [a, b] = v.to_be_bytes();
        self.u8(a);
        self.u8(b);
    }
    #[inline(always)]
    fn u32(&mut self, v: u32) {
        self.u16((v >> 16) as u16);
        self.u16(v as u16);
    }
    #[inline(always)]
    fn bytes<const N: usize>(&mut self, v: &[u8; N]) {
        let mut i = 0;
        while i < N {
            self.u8(v[i]);
            i += 1;
        }
    }
    /// A record owned by the question name, up to its RDATA.
    #[inline(always)]
    fn rr(&mut self, rtype: u16, ttl: u32, rdlen: u16) {
        self.u16(PTR_QNAME);
        self.u16(rtype);
        self.u16(CLASS_IN);
        self.u32(ttl);
        self.u16(rdlen);
    }
    #[inline(always)]
    fn soa(&mut self, ttl: u32) {
        self.rr(TYPE_SOA, ttl, SOA_MNAME.len() as u16 + 1 + 20);
        self.bytes(SOA_MNAME);
        self.u8(0); // RNAME: the root
        self.u32(1); // serial
        self.u32(3600); // refresh
        self.u32(600); // retry
        self.u32(86400); // expire
        self.u32(ttl); // minimum: the negative-caching TTL (RFC 2308)
    }
}

/// Builds the answer to a blocked query of type `qtype`. `canary` holds the canary bits of
/// the verdict (`crate::rule::CANARY_*`), which choose the answer over the response mode.
#[inline(always)]
pub fn build(cfg: &Config, q: &Query, qtype: u16, edns: bool, canary: u8) -> Answer {
    let mut a = Answer {
        header: [0; HEADER_LEN],
        tail: [0; TAIL_MAX],
        len: 0,
    };
    build_into(&mut a, cfg, q, qtype, edns, canary);
    a
}

/// [`build`], written into `out`: in BPF, map memory rather than the stack.
#[inline(always)]
pub fn build_into(out: &mut Answer, cfg: &Config, q: &Query, qtype: u16, edns: bool, canary: u8) {
    clear(&mut out.tail);
    let mut w = Writer {
        buf: &mut out.tail,
        n: 0,
    };
    let (mut an, mut ns) = (0u16, 0u16);
    let ttl = cfg.ttl;
    let mode = if canary & crate::rule::CANARY_NXDOMAIN != 0 {
        response::NXDOMAIN
    } else if canary & crate::rule::CANARY_NODATA != 0 {
        response::NODATA
    } else {
        cfg.response
    };
    let rcode = match mode {
        response::NXDOMAIN => {
            w.soa(ttl);
            ns = 1;
            RCODE_NXDOMAIN
        }
        response::REFUSED => RCODE_REFUSED,
        response::ADDRESS if qtype == TYPE_A && cfg.has_v4 != 0 => {
            w.rr(TYPE_A, ttl, 4);
            w.bytes(&cfg.v4);
            an = 1;
            RCODE_NOERROR
        }
        response::ADDRESS if qtype == TYPE_AAAA && cfg.has_v6 != 0 => {
            w.rr(TYPE_AAAA, ttl, 16);
            w.bytes(&cfg.v6);
            an = 1;
            RCODE_NOERROR
        }
        // NODATA, and the types and families an address answer does not cover.
        _ => {
            w.soa(ttl);
            ns = 1;
            RCODE_NOERROR
        }
    };
    if edns {
        w.u8(0);
        w.u16(TYPE_OPT);
        w.u16(EDNS_UDP_SIZE);
        w.u32(0);
        w.u16(0);
    }
    let flags = FLAG_QR | (q.flags & FLAG_RD) | FLAG_RA | rcode as u16;
    out.len = w.n;
    for (i, v) in [q.id, flags, 1, an, ns, edns as u16]
        .into_iter()
        .enumerate()
    {
        out.header[2 * i..2 * i + 2].copy_from_slice(&v.to_be_bytes());
    }
}

impl Answer {
    /// What kind of answer it is, one of `config::response`: read back from its header, as
    /// canaries and address answers for other types change the configured kind.
    #[inline(always)]
    pub const fn kind(&self) -> u32 {
        let rcode = self.header[3] & 0x0f;
        let answers = self.header[7];
        if rcode == RCODE_NXDOMAIN {
            response::NXDOMAIN as u32
        } else if rcode == RCODE_REFUSED {
            response::REFUSED as u32
        } else if answers != 0 {
            response::ADDRESS as u32
        } else {
            response::NODATA as u32
        }
    }

    /// Length of the DNS message.
    #[inline(always)]
    pub const fn message_len(&self, name: &Name) -> usize {
        HEADER_LEN + name.wire_len + 4 + self.len
    }
}

/// The answers one config gives, built ahead by userspace (`templates`) and read by the XDP
/// program, which only fills in the query's ID and RD bit: a blocked query's answer is one of
/// these, chosen by its canary, its type and whether it has EDNS ([`template_index`]). The
/// builder above runs once per config rather than once per packet: in the kernel it cost a
/// blocked answer about 80 ns (the writes, one byte a store, and the tail's checksum), and
/// its many paths cost the verifier.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    /// The records after the question, as [`Answer::tail`]; 8-byte aligned, so copied a word
    /// at a time.
    pub tail: [u8; TAIL_MAX],
    /// The header with ID 0 and RD clear.
    pub header: [u8; HEADER_LEN],
    /// Bytes of `tail` used.
    pub len: u16,
    /// The answer's kind, one of `config::response`, for its counter.
    pub kind: u8,
    pub _pad: u8,
    /// The folded sum of `header`, at an even position.
    pub header_sum: u16,
    /// The folded sum of `tail`, at an even position.
    pub tail_sum: u16,
    pub _pad2: u32,
}

const _: () = assert!(core::mem::offset_of!(Template, tail) == 0);

#[cfg(feature = "user")]
unsafe impl aya::Pod for Template {}

/// How many templates one config has: 3 modes (the config's, and the two canaries) by 3 types
/// (A, AAAA, any other) by EDNS or not.
pub const TEMPLATES: usize = 18;

/// Which template answers a blocked query: below [`TEMPLATES`].
#[inline(always)]
pub const fn template_index(canary: u8, qtype: u16, edns: bool) -> usize {
    let mode = if canary & crate::rule::CANARY_NXDOMAIN != 0 {
        1
    } else if canary & crate::rule::CANARY_NODATA != 0 {
        2
    } else {
        0
    };
    let class = match qtype {
        TYPE_A => 0,
        TYPE_AAAA => 1,
        _ => 2,
    };
    (mode * 3 + class) * 2 + edns as usize
}

/// Every template of `cfg`, in [`template_index`] order, each built by [`build`].
pub fn templates(cfg: &Config) -> [Template; TEMPLATES] {
    const CANARIES: [u8; 3] = [0, crate::rule::CANARY_NXDOMAIN, crate::rule::CANARY_NODATA];
    const TYPES: [u16; 3] = [TYPE_A, TYPE_AAAA, TYPE_SOA]; // SOA: any other type
    let q = Query {
        id: 0,
        flags: 0,
        arcount: 0,
    };
    core::array::from_fn(|i| {
        let (canary, qtype, edns) = (CANARIES[i / 6], TYPES[i / 2 % 3], i % 2 == 1);
        debug_assert_eq!(template_index(canary, qtype, edns), i);
        let a = build(cfg, &q, qtype, edns, canary);
        let mut header_sum = Sum::new();
        header_sum.add_bytes(&a.header, 0);
        let mut tail_sum = Sum::new();
        tail_sum.add_bytes(&a.tail, 0);
        Template {
            tail: a.tail,
            header: a.header,
            len: a.len as u16,
            kind: a.kind() as u8,
            _pad: 0,
            header_sum: header_sum.fold(),
            tail_sum: tail_sum.fold(),
            _pad2: 0,
        }
    })
}

impl Template {
    /// The answer's header to query `q`: the template's, with `q`'s ID and RD bit.
    #[inline(always)]
    pub fn header(&self, q: &Query) -> [u8; HEADER_LEN] {
        let mut h = self.header;
        let [a, b] = q.id.to_be_bytes();
        h[0] = a;
        h[1] = b;
        h[2] |= ((q.flags & FLAG_RD) >> 8) as u8;
        h
    }

    /// Length of the DNS message.
    #[inline(always)]
    pub const fn message_len(&self, name: &Name) -> usize {
        HEADER_LEN + name.wire_len + 4 + self.len as usize
    }

    /// The answer's UDP checksum. `addrs` holds the sum of the source and destination
    /// addresses and ports (unchanged by swapping them), and `name_sum` the name's part at UDP
    /// position 8 + [`HEADER_LEN`] (`name::checksum_part`); the rest comes from the sums kept
    /// in the template: the query's ID and RD bit are added to the header's (a sum of 16-bit
    /// words, to which zeroed fields gave nothing), and the tail's is byte-swapped where the
    /// name's odd length puts it at an odd position.
    #[inline(always)]
    pub fn udp_checksum(
        &self,
        q: &Query,
        mut addrs: Sum,
        name: &Name,
        name_sum: u32,
        qtype: u16,
        qclass: u16,
    ) -> u16 {
        let udp_len = (8 + self.message_len(name)) as u16;
        addrs.add_u16(17); // pseudo-header protocol
        addrs.add_u16(udp_len); // pseudo-header length
        addrs.add_u16(udp_len); // UDP header length
        addrs.add_u16(self.header_sum);
        addrs.add_u16(q.id);
        addrs.add_u16(q.flags & FLAG_RD);
        addrs.add_partial(name_sum);
        let q = 8 + HEADER_LEN + name.wire_len;
        addrs.add_bytes(&qtype.to_be_bytes(), q);
        addrs.add_bytes(&qclass.to_be_bytes(), q + 2);
        let odd = (q & 1) as u32;
        // A branch-free swap: a position the verifier does not know forks no paths.
        let t = self.tail_sum as u32;
        let swapped = (t >> 8 | t << 8) & 0xffff;
        addrs.add_u16((t * (1 - odd) + swapped * odd) as u16);
        addrs.udp()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{string::ToString, vec::Vec};

    use hickory_proto::{
        op::{Message, MessageType, OpCode, ResponseCode},
        rr::{RData, RecordType},
    };

    use super::*;
    use crate::{
        counters as c,
        name::{LabelHashes, walk},
        query::{check_header, has_opt},
    };

    /// A query as a client sends it, built with hickory.
    fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
        use hickory_proto::{
            op::{Edns, Query as Q},
            rr::Name as HName,
        };
        let mut m = Message::new();
        m.set_id(0xbeef)
            .set_recursion_desired(true)
            .add_query(Q::query(HName::from_ascii(name).unwrap(), qtype));
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().unwrap()
    }

    /// Runs the whole pipeline on a message: header, name, additional, answer.
    fn answer(msg: &[u8], cfg: &Config) -> Message {
        let q = check_header(msg[..12].try_into().unwrap()).expect("a query");
        let mut hashes = LabelHashes::default();
        let name = walk(msg, 12, &mut hashes).unwrap();
        let qoff = 12 + name.wire_len;
        let qtype = u16::from_be_bytes([msg[qoff], msg[qoff + 1]]);
        let edns = has_opt(msg, qoff + 4, q.arcount);
        let a = build(cfg, &q, qtype, edns, 0);
        let mut out = Vec::from(&a.header[..]);
        out.extend_from_slice(&msg[12..qoff + 4]);
        out.extend_from_slice(&a.tail[..a.len]);
        assert_eq!(out.len(), a.message_len(&name));
        assert!(a.tail[a.len..].iter().all(|&b| b == 0));
        Message::from_vec(&out).expect("hickory parses the answer")
    }

    fn address_cfg() -> Config {
        let mut c = Config::new(response::ADDRESS, 300);
        c.has_v4 = 1;
        c.v4 = [198, 18, 0, 10];
        c.has_v6 = 1;
        c.v6 = "2001:db8::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        c
    }

    #[test]
    fn nxdomain_with_soa_and_edns() {
        let q = query("Ads.Example.com.", RecordType::A, true);
        let m = answer(&q, &Config::default());
        assert_eq!(m.id(), 0xbeef);
        assert_eq!(m.message_type(), MessageType::Response);
        assert_eq!(m.op_code(), OpCode::Query);
        assert!(m.recursion_desired() && m.recursion_available());
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert_eq!(m.queries()[0].name().to_string(), "Ads.Example.com.");
        assert!(m.answers().is_empty());
        let soa = &m.name_servers()[0];
        assert_eq!(soa.record_type(), RecordType::SOA);
        assert_eq!(soa.ttl(), 10);
        let RData::SOA(s) = soa.data() else { panic!() };
        assert_eq!(s.minimum(), 10);
        let edns = m.extensions().as_ref().expect("an OPT record");
        assert_eq!(edns.max_payload(), EDNS_UDP_SIZE);
    }

    #[test]
    fn nodata_and_refused() {
        let q = query("x.test.", RecordType::AAAA, false);
        let m = answer(&q, &Config::new(response::NODATA, 60));
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
        assert_eq!(m.name_servers()[0].ttl(), 60);
        assert!(m.extensions().is_none());
        let m = answer(&q, &Config::new(response::REFUSED, 60));
        assert_eq!(m.response_code(), ResponseCode::Refused);
        assert!(m.answers().is_empty() && m.name_servers().is_empty());
    }

    #[test]
    fn address_answers_a_and_aaaa_and_nodata_for_the_rest() {
        let cfg = address_cfg();
        let m = answer(&query("a.test.", RecordType::A, true), &cfg);
        assert_eq!(
            m.answers()[0].data(),
            &RData::A("198.18.0.10".parse().unwrap())
        );
        assert_eq!(m.answers()[0].ttl(), 300);
        let m = answer(&query("a.test.", RecordType::AAAA, false), &cfg);
        assert_eq!(
            m.answers()[0].data(),
            &RData::AAAA("2001:db8::10".parse().unwrap())
        );
        let m = answer(&query("a.test.", RecordType::HTTPS, true), &cfg);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
        // Only an IPv4 block page: AAAA gets NODATA.
        let mut v4 = cfg;
        v4.has_v6 = 0;
        let m = answer(&query("a.test.", RecordType::AAAA, false), &v4);
        assert!(m.answers().is_empty());
        assert_eq!(m.name_servers().len(), 1);
    }

    #[test]
    fn canaries_override_the_mode() {
        use crate::rule::{CANARY_NODATA, CANARY_NXDOMAIN};
        let q = Query {
            id: 1,
            flags: 0,
            arcount: 0,
        };
        let a = build(&address_cfg(), &q, TYPE_A, false, CANARY_NXDOMAIN);
        assert_eq!(a.header[3] & 0x0f, RCODE_NXDOMAIN);
        let a = build(&address_cfg(), &q, TYPE_A, false, CANARY_NODATA);
        assert_eq!(
            (a.header[3] & 0x0f, a.header[7], a.header[9]),
            (RCODE_NOERROR, 0, 1)
        );
    }

    #[test]
    fn longest_tail_fits() {
        let q = Query {
            id: 1,
            flags: 0,
            arcount: 1,
        };
        let a = build(&Config::default(), &q, TYPE_A, true, 0);
        assert_eq!(a.len, 50 + OPT_LEN);
        assert!(a.len <= TAIL_MAX);
    }

    #[test]
    fn header_accepts_any_query_with_one_question() {
        let ok = query("a.test.", RecordType::A, true);
        let hdr = |f: &dyn Fn(&mut [u8])| {
            let mut h: [u8; 12] = ok[..12].try_into().unwrap();
            f(&mut h);
            check_header(&h)
        };
        assert!(hdr(&|_| {}).is_ok());
        // Not queries: they pass.
        assert_eq!(hdr(&|h| h[2] |= 0x80), Err(c::NOT_QUERY)); // QR
        assert_eq!(hdr(&|h| h[2] |= 0x08), Err(c::NOT_QUERY)); // OPCODE 1
        assert_eq!(hdr(&|h| h[2] |= 0x28), Err(c::NOT_QUERY)); // UPDATE
        assert_eq!(hdr(&|h| h[2] |= 0x20), Err(c::NOT_QUERY)); // NOTIFY
        // Queries that cannot be parsed: dropped.
        assert_eq!(hdr(&|h| h[5] = 2), Err(c::QUESTIONS));
        assert_eq!(hdr(&|h| h[5] = 0), Err(c::QUESTIONS));
        assert_eq!(hdr(&|h| h[4] = 1), Err(c::QUESTIONS)); // 257
        // Whatever else the header says, a query with one question is answered.
        assert!(hdr(&|h| h[2] |= 0x02).is_ok()); // TC
        assert!(hdr(&|h| h[7] = 1).is_ok()); // ANCOUNT
        assert!(hdr(&|h| h[9] = 1).is_ok()); // NSCOUNT
        assert_eq!(hdr(&|h| h[11] = 7).map(|q| q.arcount), Ok(7));
    }

    #[test]
    fn edns_is_the_first_additional_record_being_an_opt() {
        let q = query("a.test.", RecordType::A, true);
        let off = q.len() - OPT_LEN;
        assert!(has_opt(&q[..], off, 1));
        assert!(!has_opt(&q[..], off, 0));
        // Version, flags and options do not matter, nor what follows.
        let mut v1 = q.clone();
        v1[off + 6] = 1;
        v1.extend_from_slice(&[0xde, 0xad]);
        assert!(has_opt(&v1[..], off, 1));
        let mut not_opt = q.clone();
        not_opt[off + 2] = 250; // TSIG
        assert!(!has_opt(&not_opt[..], off, 1));
        // Cut short.
        assert!(!has_opt(&q[..off + 2], off, 1));
        // Whatever the additional section holds, the answer to a query with an OPT parses
        // in hickory, with an OPT of its own.
        let cfg = Config::default();
        for tail in [
            &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8][..], // a cookie
            &[0, 8, 0, 0],                              // an empty client subnet
            &[0, 10, 0],                                // cut short
            &[0xfd, 0xe9, 0xff, 0xff, 0],               // running past the record
        ] {
            let mut m = q.clone();
            let rdlen = (tail.len() as u16).to_be_bytes();
            m[off + 9] = rdlen[0];
            m[off + 10] = rdlen[1];
            m.extend_from_slice(tail);
            let a = answer(&m, &cfg);
            assert_eq!(a.response_code(), ResponseCode::NXDomain, "{tail:?}");
            let e = a.extensions().as_ref().expect("an OPT back");
            assert_eq!((e.version(), e.options().as_ref().len()), (0, 0));
        }
    }

    #[test]
    fn kinds() {
        let q = check_header(&[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        let mut cfg = address_cfg();
        assert_eq!(
            build(&cfg, &q, TYPE_A, false, 0).kind(),
            response::ADDRESS as u32
        );
        assert_eq!(
            build(&cfg, &q, 16, false, 0).kind(),
            response::NODATA as u32
        );
        let nx = build(&cfg, &q, TYPE_A, false, crate::rule::CANARY_NXDOMAIN);
        assert_eq!(nx.kind(), response::NXDOMAIN as u32);
        cfg.response = response::REFUSED;
        assert_eq!(
            build(&cfg, &q, TYPE_A, false, 0).kind(),
            response::REFUSED as u32
        );
        cfg.response = response::NODATA;
        assert_eq!(
            build(&cfg, &q, TYPE_A, true, 0).kind(),
            response::NODATA as u32
        );
    }

    /// Every template gives the answer [`build`] gives, byte for byte and checksum for
    /// checksum, for every config kind, canary, type, EDNS, RD bit and name parity.
    #[test]
    fn templates_match_the_builder() {
        let mut cfgs = std::vec![address_cfg()];
        for mode in [
            response::NXDOMAIN,
            response::NODATA,
            response::REFUSED,
            response::ADDRESS,
        ] {
            cfgs.push(Config::new(mode, 77));
        }
        for cfg in &cfgs {
            let ts = templates(cfg);
            for canary in [0, crate::rule::CANARY_NXDOMAIN, crate::rule::CANARY_NODATA] {
                for (qtype, rt) in [
                    (TYPE_A, RecordType::A),
                    (TYPE_AAAA, RecordType::AAAA),
                    (16, RecordType::TXT),
                    (TYPE_SOA, RecordType::SOA),
                ] {
                    for edns in [false, true] {
                        for name in ["odd.example.", "even.example."] {
                            let msg = query(name, rt, edns);
                            let mut qh = check_header(msg[..12].try_into().unwrap()).unwrap();
                            for rd in [0, FLAG_RD] {
                                qh.flags = rd;
                                let mut hashes = LabelHashes::default();
                                let n = walk(&msg[..], 12, &mut hashes).unwrap();
                                let a = build(cfg, &qh, qtype, edns, canary);
                                let t = &ts[template_index(canary, qtype, edns)];
                                assert_eq!(t.header(&qh), a.header);
                                assert_eq!(&t.tail[..], &a.tail[..]);
                                assert_eq!(t.len as usize, a.len);
                                assert_eq!(t.kind as u32, a.kind());
                                let c = checksum(t, &qh, &msg, &n, qtype);
                                assert!(
                                    sums_to_zero(&msg, &n, &a, c),
                                    "{name} {qtype} edns {edns} canary {canary} rd {rd}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The template's UDP checksum for `msg`, a query from 198.18.0.2:40000 to 198.18.0.1:53.
    fn checksum(t: &Template, q: &Query, msg: &[u8], n: &Name, qtype: u16) -> u16 {
        let mut addrs = Sum::new();
        addrs.add_bytes(&[198, 18, 0, 2, 198, 18, 0, 1, 0x9c, 0x40, 0, 53], 0);
        let part = crate::name::checksum_part(crate::name::tests::words(&msg[12..]), n.wire_len);
        t.udp_checksum(q, addrs, n, part, qtype, CLASS_IN)
    }

    /// Whether the answer `a` to `msg` with UDP checksum `c`, as it goes on the wire, sums to
    /// zero with its pseudo-header, summed from scratch.
    fn sums_to_zero(msg: &[u8], n: &Name, a: &Answer, c: u16) -> bool {
        let msg_len = a.message_len(n);
        let mut dgram = Vec::from(&[0, 53, 0x9c, 0x40][..]);
        dgram.extend_from_slice(&((8 + msg_len) as u16).to_be_bytes());
        dgram.extend_from_slice(&c.to_be_bytes());
        dgram.extend_from_slice(&a.header);
        dgram.extend_from_slice(&msg[12..12 + n.wire_len + 4]);
        dgram.extend_from_slice(&a.tail[..a.len]);
        let mut all = Sum::new();
        all.add_bytes(&[198, 18, 0, 1, 198, 18, 0, 2], 0);
        all.add_u16(17);
        all.add_u16(dgram.len() as u16);
        all.add_bytes(&dgram, 0);
        all.fold() == 0xffff
    }
}

//! Differential: the shared name walker, header check, OPT detection and answer builder
//! against hickory-proto. dnssink reads a query's header and question and nothing after it
//! (but whether an OPT record starts there): for any message it accepts, hickory must parse
//! that header and question as the same question, and the answer dnssink builds, whatever
//! followed the question, must parse in hickory as a valid response to exactly that question.
#![no_main]

use dnssink_common::{
    answer::{self, HEADER_LEN},
    config::{Config, response},
    name::{self, LabelHashes},
    rule::{CANARY_NODATA, CANARY_NXDOMAIN},
};
use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::RecordType,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|msg: &[u8]| {
    // The last byte chooses the response mode and the canary bits; the rest is the message.
    let Some((&knob, msg)) = msg.split_last() else {
        return;
    };
    let Some(hdr) = msg.get(..HEADER_LEN) else {
        return;
    };
    let Ok(q) = answer::check_header(hdr.try_into().unwrap()) else {
        return;
    };
    let mut hashes = LabelHashes::default();
    let Ok(walked) = name::walk(msg, HEADER_LEN, &mut hashes) else {
        return;
    };
    let qoff = HEADER_LEN + walked.wire_len;
    let Some(tc) = msg.get(qoff..qoff + 4) else {
        return;
    };
    let qtype = u16::from_be_bytes([tc[0], tc[1]]);
    let edns = answer::has_opt(msg, qoff + 4, q.arcount);

    // dnssink accepts it: hickory must read the same question from the header and question,
    // the other sections dropped.
    let labels = wire_labels(&msg[HEADER_LEN..qoff]);
    assert_eq!(labels.len(), hashes.len, "one hash per label");
    let mut asked = msg[..qoff + 4].to_vec();
    asked[6..HEADER_LEN].fill(0);
    let m = Message::from_vec(&asked).expect("dnssink accepted a question hickory cannot parse");
    assert_eq!(m.message_type(), MessageType::Query);
    assert_eq!(m.op_code(), OpCode::Query);
    assert_eq!(m.id(), q.id);
    assert_eq!(m.queries().len(), 1);
    let hq = &m.queries()[0];
    assert_eq!(u16::from(hq.query_type()), qtype);
    let hlabels: Vec<Vec<u8>> = hq.name().iter().map(<[u8]>::to_vec).collect();
    assert_eq!(hlabels, labels, "the question name");

    // The answer, put together as the BPF program does, must be a valid response to it.
    let mut cfg = Config::new(knob % 4, 300);
    if knob & 0x10 != 0 {
        cfg.response = response::ADDRESS;
        cfg.has_v4 = 1;
        cfg.v4 = [198, 18, 0, 10];
        cfg.has_v6 = (knob & 0x20 != 0) as u8;
        cfg.v6 = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
    }
    let canary = [
        0,
        CANARY_NXDOMAIN,
        CANARY_NODATA,
        CANARY_NXDOMAIN | CANARY_NODATA,
    ][usize::from(knob >> 6)];
    let a = answer::build(&cfg, &q, qtype, edns, canary);
    let mut out = a.header.to_vec();
    out.extend_from_slice(&msg[HEADER_LEN..qoff + 4]);
    out.extend_from_slice(&a.tail[..a.len]);
    assert_eq!(out.len(), a.message_len(&walked));
    assert!(
        out.len() <= msg.len() + 28 + 50,
        "no larger than the query, an answer and an SOA"
    );
    let r = Message::from_vec(&out).expect("hickory cannot parse dnssink's answer");
    assert_eq!(r.message_type(), MessageType::Response);
    assert_eq!(r.id(), q.id);
    assert_eq!(r.op_code(), OpCode::Query);
    assert_eq!(r.queries(), m.queries(), "the answer's question");
    assert_eq!(r.recursion_desired(), m.recursion_desired());
    assert!(r.answers().len() <= 1 && r.name_servers().len() <= 1);
    assert_eq!(r.extensions().is_some(), edns);
    let mode = if canary & CANARY_NXDOMAIN != 0 {
        response::NXDOMAIN
    } else if canary & CANARY_NODATA != 0 {
        response::NODATA
    } else {
        cfg.response
    };
    match mode {
        response::NXDOMAIN => assert_eq!(r.response_code(), ResponseCode::NXDomain),
        response::REFUSED => assert_eq!(r.response_code(), ResponseCode::Refused),
        response::NODATA => {
            assert_eq!(r.response_code(), ResponseCode::NoError);
            assert!(r.answers().is_empty());
        }
        _ => {
            assert_eq!(r.response_code(), ResponseCode::NoError);
            let want = (qtype == u16::from(RecordType::A) && cfg.has_v4 != 0)
                || (qtype == u16::from(RecordType::AAAA) && cfg.has_v6 != 0);
            assert_eq!(r.answers().len(), usize::from(want));
        }
    }
});

/// The labels of a wire name without compression, as bytes.
fn wire_labels(mut w: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = w.split_first() {
        if n == 0 {
            break;
        }
        out.push(rest[..n as usize].to_vec());
        w = &rest[n as usize..];
    }
    out
}

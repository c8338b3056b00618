//! The TCP program, fed crafted segments through BPF_PROG_TEST_RUN (in a network namespace of
//! its own): a blocked name asked over TCP gets the sinkhole answer in the stream, checked
//! field by field with hickory-proto and every checksum; what cannot be answered right is
//! reset both ways; allowed names pass untouched, however the stream is cut.

use dnssink::{
    bpf::Sinkhole,
    compile::RuleSet,
    lists::{Options, collect},
};
use dnssink_tests::{
    frame::{CLIENT_MAC, GATEWAY_MAC, Spec, query},
    settings,
    tcp::{
        ACK, FIN, Out, PSH, RST, SYN, Seg, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, framed,
        in_private_netns, parse, test_run,
    },
};
use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::RecordType,
};

fn sinkhole() -> Sinkhole {
    let (_, b) = collect("block", b"||ads.test^\n", &Options::block());
    let rules = RuleSet::from_rules(b.iter().map(|(n, k, _)| (n.as_str(), *k))).unwrap();
    Sinkhole::load(&rules, &settings(&[])).unwrap()
}

const ISN: u32 = 0xfffffff0; // the stream wraps around zero
const SERVER: u32 = 777_000;

/// A connection's opening SYN, and the first byte of its stream.
fn open(s: &Sinkhole, spec: &Spec) -> u32 {
    let (a, _) = test_run(s, &Seg::new(spec, ISN, 0, SYN, &[]).frame());
    assert_eq!(a, TC_ACT_OK);
    ISN.wrapping_add(1)
}

fn passes(s: &Sinkhole, seg: &Seg) {
    let f = seg.frame();
    let (a, out) = test_run(s, &f);
    assert_eq!(a, TC_ACT_OK, "{seg:?}");
    assert_eq!(out, f, "a passed segment is unchanged");
}

/// A segment the program sends back to the client in place of `seg`.
fn back(s: &Sinkhole, seg: &Seg) -> Out {
    let (a, out) = test_run(s, &seg.frame());
    assert_eq!(a, TC_ACT_REDIRECT, "{seg:?}");
    let o = parse(&out).expect("a well-formed segment");
    assert_eq!((o.dst_mac, o.src_mac), (CLIENT_MAC, GATEWAY_MAC));
    assert_eq!((o.src, o.dst), (seg.spec.dst, seg.spec.src));
    assert_eq!((o.sport, o.dport), (seg.spec.dport, seg.spec.sport));
    assert_eq!(
        o.seq, seg.ack,
        "takes up the resolver's side where the client is"
    );
    let fin = (seg.flags & FIN != 0) as u32;
    assert_eq!(
        o.ack,
        seg.seq
            .wrapping_add(seg.payload.len() as u32)
            .wrapping_add(fin)
    );
    o
}

/// The sinkhole answer to `msg`, in the stream with FIN.
fn answered(s: &Sinkhole, seg: &Seg, msg: &[u8]) -> Message {
    let o = back(s, seg);
    assert_eq!(o.flags, ACK | PSH | FIN);
    assert_eq!(o.ttl, 64);
    // The client's timestamp echoed, and the resolver's last one as the value.
    assert_eq!(o.options, dnssink_tests::tcp::timestamps(2000, 1000));
    let len = u16::from_be_bytes([o.payload[0], o.payload[1]]) as usize;
    assert_eq!(len + 2, o.payload.len(), "one message, its length first");
    let m = Message::from_vec(&o.payload[2..]).expect("hickory parses the answer");
    let q = Message::from_vec(msg).unwrap();
    assert_eq!(m.id(), q.id());
    assert_eq!(m.message_type(), MessageType::Response);
    assert_eq!(m.queries(), q.queries());
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert_eq!(m.extensions().is_some(), q.extensions().is_some());
    m
}

fn reset(s: &Sinkhole, seg: &Seg) {
    let o = back(s, seg);
    assert_eq!(o.flags, RST | ACK);
    assert!(o.payload.is_empty());
}

#[test]
fn blocked_names_over_tcp_get_the_sinkhole_answer() {
    in_private_netns(|| {
        let s = sinkhole();
        for spec in [Spec::v4(), Spec::v6()] {
            for (name, qtype, edns) in [
                ("x.ads.test.", RecordType::A, true),
                ("ads.test.", RecordType::AAAA, false),
                ("ADS.test.", RecordType::ANY, true),
            ] {
                let start = open(&s, &spec);
                let msg = query(name, qtype, edns);
                let seg = Seg::new(&spec, start, SERVER, ACK | PSH, &framed(&msg));
                answered(&s, &seg, &msg);
                // The connection is forgotten: what the client sends next passes (to a
                // resolver that has reset it).
                passes(
                    &s,
                    &Seg::new(&spec, start.wrapping_add(40), SERVER + 40, ACK | FIN, &[]),
                );
            }
        }
        let c = s.counters().unwrap();
        assert_eq!(c["answered_tcp"], 6);
        assert_eq!(c["answered_subtree"], 6);
        assert_eq!(c["answered_nxdomain"], 6);
        assert_eq!(c["tcp_reset"], 0);
    });
}

#[test]
fn allowed_names_pass_however_the_stream_is_cut() {
    in_private_netns(|| {
        let s = sinkhole();
        let spec = Spec::v4();
        let ok1 = framed(&query("ok.test.", RecordType::A, true));
        let ok2 = framed(&query("www.example.test.", RecordType::AAAA, true));
        // Two pipelined in one segment, then one in a segment of its own.
        let mut seq = open(&s, &spec);
        let both = [&ok1[..], &ok2[..]].concat();
        passes(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &both));
        seq = seq.wrapping_add(both.len() as u32);
        passes(&s, &Seg::new(&spec, seq, SERVER + 90, ACK | PSH, &ok1));
        seq = seq.wrapping_add(ok1.len() as u32);
        // The length alone, then the message.
        passes(
            &s,
            &Seg::new(&spec, seq, SERVER + 180, ACK | PSH, &ok2[..2]),
        );
        passes(
            &s,
            &Seg::new(
                &spec,
                seq.wrapping_add(2),
                SERVER + 180,
                ACK | PSH,
                &ok2[2..],
            ),
        );
        seq = seq.wrapping_add(ok2.len() as u32);
        // A message cut after its question: the rest passes as part of it.
        let mut padded = query("ok.test.", RecordType::A, false);
        padded.extend_from_slice(&[0; 100]);
        let padded = framed(&padded);
        passes(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &padded[..60]));
        passes(
            &s,
            &Seg::new(
                &spec,
                seq.wrapping_add(60),
                SERVER,
                ACK | PSH,
                &padded[60..],
            ),
        );
        // A retransmission of what passed already.
        passes(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &padded[..60]));
        // The handshake's last ACK, and a FIN.
        passes(&s, &Seg::new(&spec, seq, SERVER, ACK, &[]));
        let c = s.counters().unwrap();
        assert_eq!(c["answered_tcp"] + c["tcp_reset"], 0);
    });
}

#[test]
fn a_blocked_name_after_the_prefix_alone_is_answered() {
    in_private_netns(|| {
        let s = sinkhole();
        let spec = Spec::v6();
        let seq = open(&s, &spec);
        let msg = query("x.ads.test.", RecordType::A, true);
        let f = framed(&msg);
        passes(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &f[..2]));
        answered(
            &s,
            &Seg::new(&spec, seq.wrapping_add(2), SERVER, ACK | PSH, &f[2..]),
            &msg,
        );
    });
}

#[test]
fn what_cannot_be_answered_right_is_reset_both_ways() {
    in_private_netns(|| {
        let mut s = sinkhole();
        let spec = Spec::v4();
        let blocked = framed(&query("x.ads.test.", RecordType::A, true));
        let ok = framed(&query("ok.test.", RecordType::A, true));
        // A blocked name after an allowed one: the resolver's answer may be in flight.
        let seq = open(&s, &spec);
        passes(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &ok));
        reset(
            &s,
            &Seg::new(
                &spec,
                seq.wrapping_add(ok.len() as u32),
                SERVER + 50,
                ACK | PSH,
                &blocked,
            ),
        );
        // Pipelined behind an allowed one in the same segment.
        let seq = open(&s, &spec);
        reset(
            &s,
            &Seg::new(
                &spec,
                seq,
                SERVER,
                ACK | PSH,
                &[&ok[..], &blocked[..]].concat(),
            ),
        );
        // A question split across segments.
        let seq = open(&s, &spec);
        reset(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &blocked[..20]));
        // A connection whose start was not seen.
        reset(
            &s,
            &Seg::new(
                &Spec {
                    sport: 40001,
                    ..spec.clone()
                },
                5,
                SERVER,
                ACK | PSH,
                &blocked,
            ),
        );
        // A compressed question, and two questions: unparsed.
        let mut compressed = query("x.ads.test.", RecordType::A, false);
        compressed[12] = 0xc0;
        compressed[13] = 12;
        let mut two = query("ok.test.", RecordType::A, false);
        two[5] = 2;
        for bad in [&compressed, &two] {
            let seq = open(&s, &spec);
            reset(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &framed(bad)));
        }
        let c = s.counters().unwrap();
        assert_eq!(c["tcp_reset"], 6);
        assert_eq!(c["answered_tcp"], 0);
        assert_eq!((c["unparsed_compressed"], c["unparsed_questions"]), (1, 1));
        // --pass-unparsed: what cannot be read passes, a question split across segments
        // included; a blocked name read whole is still never passed.
        s.set_settings(&settings(&["--pass-unparsed"])).unwrap();
        let seq = open(&s, &spec);
        passes(
            &s,
            &Seg::new(&spec, seq, SERVER, ACK | PSH, &framed(&compressed)),
        );
        let seq = open(&s, &spec);
        passes(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &blocked[..20]));
        let seq = open(&s, &spec);
        let msg = query("x.ads.test.", RecordType::A, true);
        answered(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &blocked), &msg);
    });
}

#[test]
fn out_of_order_segments_wait_for_the_gap() {
    in_private_netns(|| {
        let s = sinkhole();
        let spec = Spec::v4();
        let seq = open(&s, &spec);
        let msg = query("x.ads.test.", RecordType::A, true);
        let f = framed(&msg);
        let (a, _) = test_run(
            &s,
            &Seg::new(&spec, seq.wrapping_add(10), SERVER, ACK | PSH, &f).frame(),
        );
        assert_eq!(a, TC_ACT_SHOT);
        assert_eq!(s.counters().unwrap()["tcp_out_of_order"], 1);
        // The sender fills the gap: the message is read whole.
        answered(&s, &Seg::new(&spec, seq, SERVER, ACK | PSH, &f), &msg);
    });
}

#[test]
fn other_tcp_passes_untouched() {
    in_private_netns(|| {
        let s = sinkhole();
        let msg = framed(&query("x.ads.test.", RecordType::A, true));
        for spec in [
            Spec {
                dport: 5353,
                ..Spec::v4()
            },
            Spec {
                dport: 853,
                ..Spec::v6()
            },
        ] {
            passes(&s, &Seg::new(&spec, 1, SERVER, ACK | PSH, &msg));
        }
        // The resolver's answers to the client, from port 53.
        let back = Spec {
            sport: 53,
            dport: 40000,
            ..Spec::v4()
        };
        passes(&s, &Seg::new(&back, 1, SERVER, ACK | PSH, &msg));
        assert_eq!(s.counters().unwrap()["tcp_segments"], 0);
    });
}

#[test]
fn data_in_a_syn_is_held_back_until_it_can_be_read() {
    in_private_netns(|| {
        let s = sinkhole();
        for spec in [Spec::v4(), Spec::v6()] {
            // TCP Fast Open: the query rides in the SYN.
            let msg = query("x.ads.test.", RecordType::A, true);
            let syn = Seg::new(&spec, ISN, 0, SYN, &framed(&msg));
            let (a, out) = test_run(&s, &syn.frame());
            assert_eq!(a, TC_ACT_OK);
            let o = parse(&out).expect("a well-formed SYN");
            assert_eq!((o.flags, o.seq, o.ack), (SYN, ISN, 0));
            assert!(o.payload.is_empty(), "the data does not go on unread");
            assert_eq!(o.options, syn.options, "the options go on as they came");
            assert_eq!((o.src, o.dst), (spec.src, spec.dst));
            // The client sends it again after the handshake: read, and answered.
            let again = Seg::new(&spec, ISN.wrapping_add(1), SERVER, ACK | PSH, &framed(&msg));
            answered(&s, &again, &msg);
        }
        assert_eq!(s.counters().unwrap()["tcp_syn_data_held_back"], 2);
    });
}

//! Indices of the per-CPU `COUNTERS` array: what happened to each frame.

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident = $idx:expr, $label:expr;)*) => {
        $($(#[$doc])* pub const $name: u32 = $idx;)*

        /// Whether `counter` is a reason a DNS query could not be parsed. Such a query is
        /// dropped unless --pass-unparsed: passed, it could carry a blocked name to the
        /// resolver, which would answer it.
        pub const fn unparsed(counter: u32) -> bool {
            matches!(counter, TRUNCATED | COMPRESSED | BAD_NAME | QUESTIONS | UNSUPPORTED)
        }
        /// Number of counters.
        pub const COUNT: u32 = [$($idx),*].len() as u32;
        /// Each counter's index and a stable, machine-friendly name.
        pub const ALL: &[(u32, &str)] = &[$(($idx, $label)),*];
    };
}

counters! {
    /// Every frame the program saw.
    FRAMES = 0, "frames";
    /// UDP datagrams to port 53.
    DNS = 1, "dns_queries";
    /// Answered from an exact block rule.
    ANSWERED_EXACT = 2, "answered_exact";
    /// Answered from a subtree block rule.
    ANSWERED_SUBTREE = 3, "answered_subtree";
    /// A block rule matched, but an allow rule won.
    ALLOWED = 4, "allowed";
    /// A well-formed query that no rule matched: passed to the resolver.
    PASSED = 5, "passed";
    /// Not a query (QR=1, or an OPCODE other than QUERY: UPDATE, NOTIFY...): passed.
    NOT_QUERY = 6, "passed_not_query";
    /// The frame ended early, or the IP and UDP lengths disagree.
    TRUNCATED = 7, "unparsed_truncated";
    /// A compression pointer in the question name.
    COMPRESSED = 8, "unparsed_compressed";
    /// A malformed name: reserved label types, or too long.
    BAD_NAME = 9, "unparsed_bad_name";
    /// A query with no question, or several.
    QUESTIONS = 10, "unparsed_questions";
    /// An IPv4 fragment, or IPv6 extension headers, on DNS (UDP, or TCP to port 53).
    UNSUPPORTED = 11, "unparsed_unsupported";
    /// The frame could not be grown for the answer.
    TX_FAILED = 12, "tx_failed";
    /// Answered from a canary rule.
    ANSWERED_CANARY = 13, "answered_canary";
    /// A DNS query over UDP to a resolver that is not an internal one, for a name not
    /// blocked: dropped.
    DROP_DNS_UDP = 14, "dropped_dns_udp_other_resolver";
    /// DNS over TCP to a resolver that is not an internal one: dropped.
    DROP_DNS_TCP = 15, "dropped_dns_tcp_other_resolver";
    /// DNS over TLS (TCP 853): dropped.
    DROP_DOT = 16, "dropped_dot";
    /// DNS over QUIC (UDP 853): dropped.
    DROP_DOQ = 17, "dropped_doq";
    /// A port blocked with --block-port: dropped.
    DROP_PORT = 18, "dropped_port";
    /// A destination blocked with --block-ip: dropped.
    DROP_IP = 19, "dropped_ip";
    /// A query-log event lost: the ring buffer was full.
    LOG_DROPPED = 20, "log_dropped";
    /// A query for a blocked name from a source outside --clients: dropped. Answering it
    /// would let spoofed queries turn the gateway into a reflector; passing it would give a
    /// blocked name the resolver's answer.
    FOREIGN_CLIENT = 21, "dropped_foreign_client";
    /// Answered with NXDOMAIN (by the response mode, or a canary); the next three counters
    /// are the other kinds, in the order of `config::response`.
    ANSWERED_NXDOMAIN = 22, "answered_nxdomain";
    /// Answered with NOERROR and no record (NODATA).
    ANSWERED_NODATA = 23, "answered_nodata";
    /// Answered with REFUSED.
    ANSWERED_REFUSED = 24, "answered_refused";
    /// Answered with an address record (`null` or a block page).
    ANSWERED_ADDRESS = 25, "answered_address";
    /// A query that could not be parsed (counted by reason too): dropped, unless
    /// --pass-unparsed.
    DROP_UNPARSED = 26, "dropped_unparsed";
    /// A TCP segment with DNS data to port 53, looked at by the TCP program.
    TCP_SEGMENTS = 27, "tcp_segments";
    /// A blocked name asked over TCP: the sinkhole answer went back over TCP, and the
    /// resolver's side of the connection was reset.
    ANSWERED_TCP = 28, "answered_tcp";
    /// A TCP connection reset both ways: a blocked name that could not be answered in the
    /// stream, or DNS over TCP that could not be parsed.
    TCP_RESET = 29, "tcp_reset";
    /// A TCP segment to port 53 out of order, dropped until the sender fills the gap.
    TCP_OUT_OF_ORDER = 30, "tcp_out_of_order";
    /// Data in a client's SYN (TCP Fast Open), taken out so that it comes again after the
    /// handshake, where its question is read.
    TCP_SYN_DATA = 31, "tcp_syn_data_held_back";
}

/// The counter of answers of `kind` (one of `config::response`), with no branch: the four
/// counters follow the kinds' order, which the assertion below holds at compile time.
#[inline(always)]
pub const fn answered_as(kind: u32) -> u32 {
    ANSWERED_NXDOMAIN + kind
}

const _: () = {
    use crate::config::response as r;
    assert!(answered_as(r::NXDOMAIN as u32) == ANSWERED_NXDOMAIN);
    assert!(answered_as(r::NODATA as u32) == ANSWERED_NODATA);
    assert!(answered_as(r::REFUSED as u32) == ANSWERED_REFUSED);
    assert!(answered_as(r::ADDRESS as u32) == ANSWERED_ADDRESS);
};

#[cfg(test)]
mod tests {
    #[test]
    fn indices_are_dense() {
        for (i, (idx, _)) in super::ALL.iter().enumerate() {
            assert_eq!(*idx as usize, i);
        }
        assert_eq!(super::COUNT as usize, super::ALL.len());
    }
}

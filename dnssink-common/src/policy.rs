//! What the program drops before it: DNS that goes around the internal resolvers, DNS over
//! TLS and QUIC, blocked ports, and blocked destinations.

use crate::counters as c;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
const DNS: u16 = 53;
const DOT_DOQ: u16 = 853;

/// The transport header fields a decision needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub proto: u8,
    pub dport: u16,
}

/// The key of the `PORTS` map: a blocked protocol and port.
#[inline(always)]
pub const fn port_key(proto: u8, port: u16) -> u32 {
    ((proto as u32) << 16) | port as u32
}

/// The drop that applies to `flow`, by port alone: `Some(counter)`, or None.
///
/// - `enforce`: internal resolvers are set (--resolver); `to_resolver`: the destination is one.
/// - `port_blocked`: the PORTS map holds the flow's protocol and port.
///
/// UDP port 53 is not decided here: the DNS path answers blocked names first, whatever the
/// destination, and calls [`dns_udp`] for the rest.
#[inline(always)]
pub fn by_port(flow: Flow, enforce: bool, to_resolver: bool, port_blocked: bool) -> Option<u32> {
    match (flow.proto, flow.dport) {
        (PROTO_TCP, DOT_DOQ) => Some(c::DROP_DOT),
        (PROTO_UDP, DOT_DOQ) => Some(c::DROP_DOQ),
        (PROTO_TCP, DNS) if enforce && !to_resolver => Some(c::DROP_DNS_TCP),
        _ if port_blocked => Some(c::DROP_PORT),
        _ => None,
    }
}

/// A UDP DNS query that the program does not answer: dropped when it goes to a resolver that
/// is not an internal one.
#[inline(always)]
pub const fn dns_udp(enforce: bool, to_resolver: bool) -> Option<u32> {
    if enforce && !to_resolver {
        Some(c::DROP_DNS_UDP)
    } else {
        None
    }
}

/// What becomes of a DNS query that is not answered, counted as `why`: the counter of its
/// drop (`why` itself, or another to bump), or [`PASS`].
///
/// - `policy`: the drop its destination calls for (another resolver, a blocked destination),
///   or [`PASS`]
/// - `pass_unparsed`: --pass-unparsed
///
/// Fail closed: a blocked name from a source outside the clients is dropped, and so is one
/// whose answer could not be sent (`TX_FAILED`: the frame could not be resized for it), and a
/// query that cannot be parsed, which could carry a blocked name to the resolver.
///
/// Plain numbers rather than options: the payload of a `None` is undefined, and a spill of it
/// reads an uninitialised register, which older verifiers refuse (6.12 did).
#[inline(always)]
pub const fn unanswered(why: u32, policy: u32, pass_unparsed: bool) -> u32 {
    // Both are blocked names: never passed, whatever the policy or --pass-unparsed.
    if why == c::FOREIGN_CLIENT || why == c::TX_FAILED {
        return why;
    }
    if policy != PASS {
        return policy;
    }
    if c::unparsed(why) && !pass_unparsed {
        return c::DROP_UNPARSED;
    }
    PASS
}

/// No drop: the `frames` counter, which no drop is counted by.
pub const PASS: u32 = c::FRAMES;

/// How many (protocol, port) pairs one blocked destination can carry.
pub const IP_PORTS: usize = 7;

/// The value of a blocked destination in the LPM tries: every port, or up to
/// [`IP_PORTS`] protocol and port pairs (protocol 0: TCP and UDP).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpRule {
    /// Nonzero: all traffic to the destination.
    pub any: u8,
    /// How many of `ports` are set.
    pub n: u8,
    pub protos: [u8; IP_PORTS],
    pub _pad: [u8; 1],
    pub ports: [u16; IP_PORTS],
}

impl IpRule {
    /// Whether the rule covers a packet of `proto` to `dport`.
    #[inline(always)]
    pub fn matches(&self, proto: u8, dport: u16) -> bool {
        if self.any != 0 {
            return true;
        }
        let mut hit = false;
        let mut i = 0;
        while i < IP_PORTS {
            let p = self.protos[i];
            hit |= (i as u8) < self.n
                && self.ports[i] == dport
                && (p == proto || (p == 0 && (proto == PROTO_TCP || proto == PROTO_UDP)));
            i += 1;
        }
        hit
    }
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for IpRule {}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: u8 = PROTO_TCP;
    const UDP: u8 = PROTO_UDP;

    fn f(proto: u8, dport: u16) -> Flow {
        Flow { proto, dport }
    }

    #[test]
    fn dot_doq_always_dropped() {
        assert_eq!(by_port(f(TCP, 853), false, true, false), Some(c::DROP_DOT));
        assert_eq!(by_port(f(UDP, 853), false, true, false), Some(c::DROP_DOQ));
    }

    #[test]
    fn dns_only_to_internal_resolvers_when_enforced() {
        assert_eq!(
            by_port(f(TCP, 53), true, false, false),
            Some(c::DROP_DNS_TCP)
        );
        assert_eq!(by_port(f(TCP, 53), true, true, false), None);
        assert_eq!(by_port(f(TCP, 53), false, false, false), None);
        assert_eq!(dns_udp(true, false), Some(c::DROP_DNS_UDP));
        assert_eq!(dns_udp(true, true), None);
        assert_eq!(dns_udp(false, false), None);
        // UDP 53 is the DNS path's to decide.
        assert_eq!(by_port(f(UDP, 53), true, false, false), None);
    }

    #[test]
    fn unanswered_queries_fail_closed() {
        // Passed: a name no rule blocks, an allowed one, a message that is no query.
        assert_eq!(unanswered(c::PASSED, PASS, false), PASS);
        assert_eq!(unanswered(c::ALLOWED, PASS, false), PASS);
        assert_eq!(unanswered(c::NOT_QUERY, PASS, false), PASS);
        // Unparsed: dropped, unless --pass-unparsed.
        for why in [
            c::TRUNCATED,
            c::COMPRESSED,
            c::BAD_NAME,
            c::QUESTIONS,
            c::UNSUPPORTED,
        ] {
            assert_eq!(unanswered(why, PASS, false), c::DROP_UNPARSED);
            assert_eq!(unanswered(why, PASS, true), PASS);
            assert_eq!(unanswered(why, c::DROP_DNS_UDP, false), c::DROP_DNS_UDP);
        }
        // A blocked name from outside the clients: dropped, whatever else.
        assert_eq!(unanswered(c::FOREIGN_CLIENT, PASS, true), c::FOREIGN_CLIENT);
        assert_eq!(
            unanswered(c::FOREIGN_CLIENT, c::DROP_DNS_UDP, true),
            c::FOREIGN_CLIENT
        );
        // A blocked name whose answer could not be sent: dropped, whatever else.
        assert_eq!(unanswered(c::TX_FAILED, PASS, true), c::TX_FAILED);
        assert_eq!(unanswered(c::TX_FAILED, PASS, false), c::TX_FAILED);
        assert_eq!(
            unanswered(c::TX_FAILED, c::DROP_DNS_UDP, true),
            c::TX_FAILED
        );
        // Another resolver: dropped.
        assert_eq!(
            unanswered(c::PASSED, c::DROP_DNS_UDP, true),
            c::DROP_DNS_UDP
        );
    }

    #[test]
    fn blocked_ports() {
        assert_eq!(
            by_port(f(TCP, 5222), false, false, true),
            Some(c::DROP_PORT)
        );
        assert_eq!(by_port(f(TCP, 443), false, false, false), None);
        assert_ne!(port_key(TCP, 5222), port_key(UDP, 5222));
    }

    #[test]
    fn ip_rules() {
        let any = IpRule {
            any: 1,
            ..IpRule::default()
        };
        assert!(any.matches(TCP, 1) && any.matches(1, 0));
        let mut r = IpRule {
            n: 2,
            ..IpRule::default()
        };
        r.protos[0] = TCP;
        r.ports[0] = 5222;
        r.protos[1] = 0;
        r.ports[1] = 5223;
        assert!(r.matches(TCP, 5222));
        assert!(!r.matches(UDP, 5222));
        assert!(r.matches(UDP, 5223) && r.matches(TCP, 5223));
        assert!(!r.matches(TCP, 80));
        // Slots past n never match, even if set.
        r.ports[2] = 80;
        r.protos[2] = TCP;
        assert!(!r.matches(TCP, 80));
    }
}

//! DNS over TCP (RFC 7766): where the messages of a client's stream start, and what each one
//! calls for. Pure logic, tested on the host; the tc program (`dnssink-ebpf/src/tcp.rs`) is
//! the glue that reads segments and writes the answers.
//!
//! The program follows each connection from the client to a resolver on port 53 by the
//! client's sequence numbers. Every message is a two-byte length and the message; the
//! program decides on a message when the segment that holds its question arrives:
//! - a name no rule blocks (or allows) passes, and the stream goes on past its message
//! - a blocked name in the first message of a connection gets the sinkhole answer in the
//!   stream, with FIN, and the resolver's side gets a reset: it never sees the question
//! - anything it cannot treat right is reset both ways at once: a blocked name in a later
//!   message (the resolver's answers may be in flight in the same sequence space), a question
//!   split across segments, a message that cannot be parsed, more messages in one segment
//!   than it reads

use crate::counters as c;

/// The TCP flags the program looks at.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// The most messages read from one segment (pipelined queries written at once).
pub const MAX_MESSAGES: usize = 4;

/// `messages` of a connection whose start was not seen (it was open before the program was
/// attached): its first message cannot be told apart from a later one.
pub const UNSEEN: u32 = u32::MAX;

/// A connection from a client to a resolver, IPv4 as IPv4-mapped IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub client: [u8; 16],
    pub server: [u8; 16],
    pub client_port: u16,
    pub server_port: u16,
}

/// What the program knows of a connection's stream, in the `TCP_FLOWS` LRU map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowState {
    /// The client's sequence number where the unread part of the stream starts: a message's
    /// length prefix or, when `pending` is set, its body.
    pub next: u32,
    /// The length of the message at `next`, plus one, when its prefix came in a segment of
    /// its own; 0 otherwise.
    pub pending: u32,
    /// Messages passed on this connection (saturating), or [`UNSEEN`].
    pub messages: u32,
    pub _pad: u32,
}

impl FlowState {
    /// A connection that starts: the client's SYN carries sequence number `isn`.
    pub const fn opened(isn: u32) -> FlowState {
        FlowState {
            next: isn.wrapping_add(1),
            pending: 0,
            messages: 0,
            _pad: 0,
        }
    }

    /// A connection seen first at a segment with data at `seq`: it is taken to start a
    /// message there.
    pub const fn unseen(seq: u32) -> FlowState {
        FlowState {
            next: seq,
            pending: 0,
            messages: UNSEEN,
            _pad: 0,
        }
    }
}

/// Where a segment of `len` bytes at sequence number `seq` stands against the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// It starts past the unread part: a segment before it is missing.
    Gap,
    /// All of it lies before the unread part: the rest of a passed message, or a
    /// retransmission.
    Before,
    /// The unread part starts this many bytes into it.
    At(usize),
}

#[inline(always)]
pub const fn place(state: &FlowState, seq: u32, len: usize) -> Place {
    let d = state.next.wrapping_sub(seq) as i32;
    if d < 0 {
        Place::Gap
    } else if d as usize >= len {
        Place::Before
    } else {
        Place::At(d as usize)
    }
}

/// What one message of the stream calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// To the resolver; the stream goes on after it.
    Pass,
    /// The sinkhole answer in the stream, and a reset to the resolver.
    Answer,
    /// A reset both ways.
    Reset,
}

/// The fate of a message whose question was read: `Ok(blocked)` with the verdict, or
/// `Err(counter)` for a message that is no query or cannot be parsed.
///
/// - `first`: it is the first message of the connection, and the first read from this
///   segment: no answer of the resolver can be in flight in the stream
/// - `client`: the source is among the clients (a blocked name from another is reset)
/// - `pass_unparsed`: --pass-unparsed
#[inline(always)]
pub const fn fate(read: Result<bool, u32>, first: bool, client: bool, pass_unparsed: bool) -> Fate {
    match read {
        Ok(false) => Fate::Pass,
        Ok(true) if first && client => Fate::Answer,
        Ok(true) => Fate::Reset,
        Err(why) if c::unparsed(why) && !pass_unparsed => Fate::Reset,
        Err(_) => Fate::Pass,
    }
}

/// The sequence and acknowledgement numbers of the program's segment back to the client,
/// from the client's segment (`seq`, `ack`, `len` bytes of data, `fin`): it takes up the
/// resolver's side of the stream where the client's acknowledgement says it is, and
/// acknowledges everything the client sent.
#[inline(always)]
pub const fn reply_numbers(seq: u32, ack: u32, len: u32, fin: bool) -> (u32, u32) {
    (ack, seq.wrapping_add(len).wrapping_add(fin as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_across_the_wrap() {
        let s = FlowState::opened(u32::MAX - 1); // the stream starts at u32::MAX
        assert_eq!(s.next, u32::MAX);
        assert_eq!(place(&s, u32::MAX, 30), Place::At(0));
        assert_eq!(place(&s, u32::MAX - 10, 30), Place::At(10));
        assert_eq!(place(&s, u32::MAX - 10, 10), Place::Before);
        assert_eq!(place(&s, u32::MAX - 10, 5), Place::Before);
        assert_eq!(place(&s, 3, 30), Place::Gap);
        assert_eq!(place(&FlowState::unseen(7), 7, 1), Place::At(0));
    }

    #[test]
    fn fates() {
        // Passed: names no rule blocks, messages that are no query.
        assert_eq!(fate(Ok(false), true, true, false), Fate::Pass);
        assert_eq!(fate(Ok(false), false, false, false), Fate::Pass);
        assert_eq!(fate(Err(c::NOT_QUERY), true, true, false), Fate::Pass);
        assert_eq!(fate(Err(c::PASSED), true, true, false), Fate::Pass);
        // A blocked name: answered only where nothing of the resolver's can be in flight,
        // and only for a client; reset otherwise. Never passed.
        assert_eq!(fate(Ok(true), true, true, false), Fate::Answer);
        assert_eq!(fate(Ok(true), true, true, true), Fate::Answer);
        assert_eq!(fate(Ok(true), false, true, true), Fate::Reset);
        assert_eq!(fate(Ok(true), true, false, true), Fate::Reset);
        // Unparsed: reset, unless --pass-unparsed.
        for why in [c::COMPRESSED, c::BAD_NAME, c::QUESTIONS, c::TRUNCATED] {
            assert_eq!(fate(Err(why), true, true, false), Fate::Reset);
            assert_eq!(fate(Err(why), true, true, true), Fate::Pass);
        }
    }

    #[test]
    fn reply_numbers_take_up_the_stream() {
        assert_eq!(reply_numbers(100, 5000, 30, false), (5000, 130));
        assert_eq!(reply_numbers(100, 5000, 30, true), (5000, 131));
        assert_eq!(reply_numbers(u32::MAX - 1, 0, 4, false), (0, 2));
    }
}

//! The query log: one event per answered query (and, at `LOG_ALL`, per passed one), sent
//! from the kernel through the `EVENTS` ring buffer.

/// The longest name in wire form.
pub const NAME_MAX: usize = 256;

/// `Config::log`: what the kernel logs.
pub mod level {
    /// Nothing.
    pub const OFF: u8 = 0;
    /// Answered queries.
    pub const ANSWERED: u8 = 1;
    /// Answered queries, and queries passed to the resolver or allowed by an allow rule.
    pub const ALL: u8 = 2;
}

/// One logged query, as the kernel writes it into the ring buffer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event {
    /// `bpf_ktime_get_ns`: CLOCK_MONOTONIC.
    pub time_ns: u64,
    /// The client, IPv4 as an IPv4-mapped IPv6 address.
    pub client: [u8; 16],
    pub qtype: u16,
    /// What happened, as the counter it bumped: `ANSWERED_*`, `PASSED` or `ALLOWED`.
    pub action: u8,
    pub _pad: u8,
    /// Bytes of `name` written: the question name in wire form.
    pub name_len: u16,
    pub _pad2: u16,
    pub name: [u8; NAME_MAX],
}

/// The size of the largest event.
pub const EVENT_LEN: usize = core::mem::size_of::<Event>();
/// Bytes of an event before its name.
pub const HEAD_LEN: usize = core::mem::offset_of!(Event, name);

/// An event in the ring buffer has room for its name's words only: one of these sizes of
/// name room (in 8-byte words), the smallest that holds the name ([`room_words`]). The
/// buffer holds more events, and the kernel touches fewer of its cache lines for each: a
/// fixed 288-byte event cost a logged answer about 60 ns more than a 96-byte one.
pub const ROOM_WORDS: [usize; 4] = [4, 8, 16, 32];

/// The name room, in words, of an event whose name is `len` bytes (1 to NAME_MAX).
#[inline(always)]
pub const fn room_words(len: usize) -> usize {
    if len <= 32 {
        4
    } else if len <= 64 {
        8
    } else if len <= 128 {
        16
    } else {
        32
    }
}

impl Event {
    /// An event of zeroes.
    pub const EMPTY: Event = Event {
        time_ns: 0,
        client: [0; 16],
        qtype: 0,
        action: 0,
        _pad: 0,
        name_len: 0,
        _pad2: 0,
        name: [0; NAME_MAX],
    };

    /// Reads an event from the ring buffer's bytes: its head and as much name room as it has
    /// ([`ROOM_WORDS`]), which must hold its name.
    pub fn from_bytes(b: &[u8]) -> Option<Event> {
        if b.len() < HEAD_LEN {
            return None;
        }
        let mut e = Event::EMPTY;
        let n = b.len().min(EVENT_LEN);
        // SAFETY: `Event` is plain old data, and `n` bytes of it are written from `b`.
        unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), (&raw mut e).cast::<u8>(), n) };
        (e.name_len as usize <= n - HEAD_LEN).then_some(e)
    }

    /// The name's labels, in wire form without the root label, and with every length byte
    /// checked; None for a malformed name.
    pub fn labels(&self) -> Option<impl Iterator<Item = &[u8]>> {
        let wire = self.name.get(..self.name_len as usize)?;
        let mut i = 0;
        loop {
            let n = *wire.get(i)? as usize;
            if n == 0 {
                break;
            }
            if n > 63 {
                return None;
            }
            i += 1 + n;
        }
        let mut rest = &wire[..i];
        Some(core::iter::from_fn(move || {
            let (&n, tail) = rest.split_first()?;
            let (label, tail) = tail.split_at(n as usize);
            rest = tail;
            Some(label)
        }))
    }
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for Event {}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(wire: &[u8]) -> Event {
        let mut e = Event {
            qtype: 1,
            name_len: wire.len() as u16,
            ..Event::EMPTY
        };
        e.name[..wire.len()].copy_from_slice(wire);
        e
    }

    #[test]
    fn labels_of_a_name() {
        let e = event(b"\x03ads\x07example\x03com\x00");
        assert!(e.labels().unwrap().eq([&b"ads"[..], b"example", b"com"]));
    }

    #[test]
    fn malformed_names_give_none() {
        assert!(event(b"\x05ab").labels().is_none()); // runs past the end
        assert!(event(b"\x03abc").labels().is_none()); // no root label
        assert!(event(b"\xc0\x0c").labels().is_none()); // a pointer
        let mut e = event(b"\x01a\x00");
        e.name_len = 300;
        assert!(e.labels().is_none());
    }

    #[test]
    fn size_is_stable() {
        assert_eq!(EVENT_LEN, 8 + 16 + 8 + NAME_MAX);
        assert_eq!(HEAD_LEN, 32);
        assert_eq!(*ROOM_WORDS.last().unwrap() * 8, NAME_MAX);
    }

    #[test]
    fn events_are_read_from_their_room() {
        let wire = b"\x03ads\x07example\x03com\x00";
        let e = event(wire);
        let bytes = unsafe { core::slice::from_raw_parts((&raw const e).cast::<u8>(), EVENT_LEN) };
        for words in ROOM_WORDS {
            let got = Event::from_bytes(&bytes[..HEAD_LEN + words * 8]).unwrap();
            assert!(got.labels().unwrap().eq([&b"ads"[..], b"example", b"com"]));
            assert_eq!(got.time_ns, e.time_ns);
        }
        assert_eq!(room_words(wire.len()), 4);
        assert_eq!(room_words(33), 8);
        assert_eq!(room_words(NAME_MAX), 32);
        // A room too small for the name it says it has, and a cut head.
        assert!(Event::from_bytes(&bytes[..HEAD_LEN + 8]).is_none());
        assert!(Event::from_bytes(&bytes[..HEAD_LEN - 1]).is_none());
    }
}

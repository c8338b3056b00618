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

/// The event's size in the ring buffer.
pub const EVENT_LEN: usize = core::mem::size_of::<Event>();

impl Event {
    /// Reads an event from the ring buffer's bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Event> {
        if b.len() < EVENT_LEN {
            return None;
        }
        // SAFETY: `Event` is plain old data, and `b` holds at least one.
        Some(unsafe { core::ptr::read_unaligned(b.as_ptr().cast::<Event>()) })
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
            time_ns: 0,
            client: [0; 16],
            qtype: 1,
            action: 0,
            _pad: 0,
            name_len: wire.len() as u16,
            _pad2: 0,
            name: [0; NAME_MAX],
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
    }
}

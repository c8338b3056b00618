//! The Internet checksum (RFC 1071), built up from parts whose position in the datagram is
//! known, so the answer's UDP checksum is computed from what the program wrote and walked,
//! without a second pass over the packet.

/// The contribution of one byte at `pos` (offset from an even boundary) to the sum.
///
/// A shift rather than a branch: where `pos` is a value the verifier does not know, a branch
/// on it would fork its paths at every byte summed.
#[inline(always)]
pub const fn word_part(b: u8, pos: usize) -> u32 {
    (b as u32) << ((!pos & 1) << 3)
}

/// A running ones'-complement sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sum(u64);

impl Sum {
    #[inline(always)]
    pub const fn new() -> Self {
        Sum(0)
    }

    #[inline(always)]
    pub const fn from_partial(p: u32) -> Self {
        Sum(p as u64)
    }

    /// This sum with `v`, a sum of 16-bit words, added.
    #[inline(always)]
    pub const fn plus(self, v: u64) -> Self {
        Sum(self.0 + v)
    }

    #[inline(always)]
    pub fn add_u16(&mut self, v: u16) {
        self.0 += v as u64;
    }

    #[inline(always)]
    pub fn add_u32(&mut self, v: u32) {
        self.0 += (v >> 16) as u64 + (v & 0xffff) as u64;
    }

    #[inline(always)]
    pub fn add_partial(&mut self, p: u32) {
        self.0 += p as u64;
    }

    /// Adds `bytes` that start at `pos` in the datagram.
    ///
    /// The bytes are summed as 16-bit words from an even position; at an odd position the
    /// folded sum is byte-swapped once (RFC 1071: the sum is independent of byte order), so
    /// there is no branch per byte.
    #[inline(always)]
    pub fn add_bytes(&mut self, bytes: &[u8], pos: usize) {
        let mut s = 0u64;
        let mut i = 0;
        while i + 1 < bytes.len() {
            s += u16::from_be_bytes([bytes[i], bytes[i + 1]]) as u64;
            i += 2;
        }
        if i < bytes.len() {
            s += (bytes[i] as u64) << 8;
        }
        let folded = Sum(s).fold();
        self.0 += if pos & 1 == 0 {
            folded
        } else {
            folded.swap_bytes()
        } as u64;
    }

    /// The folded 16-bit sum (not yet complemented).
    #[inline(always)]
    pub const fn fold(self) -> u16 {
        let mut s = self.0;
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s as u16
    }

    /// The value for a UDP checksum field: the complement, with 0 sent as 0xffff (RFC 768).
    #[inline(always)]
    pub const fn udp(self) -> u16 {
        match !self.fold() {
            0 => 0xffff,
            c => c,
        }
    }

    /// The value for an IPv4 header checksum field.
    #[inline(always)]
    pub const fn ip(self) -> u16 {
        !self.fold()
    }
}

/// A header checksum after 16-bit words of the header changed from `old` to `new` (RFC 1624,
/// equation 3: HC' = ~(~HC + ~m + m')), without summing the header again.
#[inline(always)]
pub fn update(checksum: u16, old: &[u16], new: &[u16]) -> u16 {
    let mut s = Sum::new();
    s.add_u16(!checksum);
    let mut i = 0;
    while i < old.len() && i < new.len() {
        s.add_u16(!old[i]);
        s.add_u16(new[i]);
        i += 1;
    }
    s.ip()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header's checksum, updated for a new length and TTL, is the one summed anew.
    #[test]
    fn updated_checksum_is_the_summed_one() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut h: [u16; 10] = core::array::from_fn(|i| (x >> (i * 6)) as u16 ^ i as u16);
            let sum = |h: &[u16; 10]| {
                let mut s = Sum::new();
                for (i, w) in h.iter().enumerate() {
                    if i != 5 {
                        s.add_u16(*w);
                    }
                }
                s.ip()
            };
            h[5] = sum(&h);
            let old = [h[1], h[4]];
            h[1] = (x >> 40) as u16;
            h[4] = 64 << 8 | (h[4] & 0xff);
            assert_eq!(update(h[5], &old, &[h[1], h[4]]), sum(&h), "{h:x?}");
        }
    }

    #[test]
    fn rfc1071_example() {
        // The example bytes of RFC 1071 section 3: sum 0xddf2.
        let mut s = Sum::new();
        s.add_bytes(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0);
        assert_eq!(s.fold(), 0xddf2);
        // Odd start position swaps the bytes of every word.
        let mut o = Sum::new();
        o.add_bytes(&[0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6], 1);
        assert_eq!(o.fold(), 0xddf2);
    }

    #[test]
    fn udp_zero_is_sent_as_ffff() {
        let mut s = Sum::new();
        s.add_u16(0xffff);
        assert_eq!(s.udp(), 0xffff);
    }
}

//! The DNS wire format's numbers that dnssink reads and writes (RFC 1035, RFC 6891), and
//! the offsets of the IP and UDP header fields that an answer rewrites.

/// Length of the DNS header.
pub const HEADER_LEN: usize = 12;
pub const TYPE_A: u16 = 1;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;
/// The UDP payload size advertised in answers (the DNS flag day 2020 value).
pub const EDNS_UDP_SIZE: u16 = 1232;
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_REFUSED: u8 = 5;
/// Length of an OPT record with no options.
pub const OPT_LEN: usize = 11;

/// Header flags: QR (a response), OPCODE, RD (recursion desired), RA (available).
pub const FLAG_QR: u16 = 0x8000;
pub const MASK_OPCODE: u16 = 0x7800;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;

/// Offsets of fields in the IPv4 header (RFC 791).
pub mod ip4 {
    pub const TOTAL_LEN: usize = 2;
    pub const TTL: usize = 8;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Offsets of fields in the IPv6 header (RFC 8200).
pub mod ip6 {
    pub const PAYLOAD_LEN: usize = 4;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Offsets of fields in the UDP header (RFC 768), which is also its length.
pub mod udp {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LEN: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const HEADER_LEN: usize = 8;
}

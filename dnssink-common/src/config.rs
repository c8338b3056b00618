//! The program's settings, one entry of the `CONFIG` array map, read once per packet.

/// What a blocked name gets.
pub mod response {
    /// RCODE 3 with an SOA in the authority section.
    pub const NXDOMAIN: u8 = 0;
    /// RCODE 0, no answer, an SOA in the authority section.
    pub const NODATA: u8 = 1;
    /// RCODE 5, nothing else.
    pub const REFUSED: u8 = 2;
    /// A and AAAA get the configured address (0.0.0.0 and :: for `null`); other types, and a
    /// family with no address configured, get NODATA.
    pub const ADDRESS: u8 = 3;
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// One of [`response`].
    pub response: u8,
    /// Nonzero when `v4` is set (with `response::ADDRESS`).
    pub has_v4: u8,
    /// Nonzero when `v6` is set (with `response::ADDRESS`).
    pub has_v6: u8,
    /// Nonzero when internal resolvers are set (--resolver): DNS to any other is dropped.
    pub enforce: u8,
    /// Nonzero when the policy maps must be looked up: `enforce`, blocked destinations
    /// (--block-ip) or blocked ports (--block-port). Zero: only DoT and DoQ are dropped, by
    /// port.
    pub policy: u8,
    /// What the query log gets: one of `event::level`.
    pub log: u8,
    /// Nonzero when only sources in the `CLIENTS` map are answered (--clients).
    pub clients: u8,
    /// Nonzero to pass DNS queries that cannot be parsed to the resolver, rather than drop
    /// them (--pass-unparsed).
    pub pass_unparsed: u8,
    /// TTL of answer records, and of the SOA that clients cache negative answers for.
    pub ttl: u32,
    pub v4: [u8; 4],
    pub v6: [u8; 16],
    /// Which half of the `ANSWERS` map holds this config's answers (`answer::templates`), 0
    /// or 1. Set by userspace as it writes the config: the answers go into the half the live
    /// config does not read, then the config that reads them, so that no packet sees a config
    /// with another's answers.
    pub answers: u8,
    pub _pad: [u8; 3],
}

impl Config {
    pub const DEFAULT_TTL: u32 = 10;

    pub const fn new(response: u8, ttl: u32) -> Self {
        Config {
            response,
            has_v4: 0,
            has_v6: 0,
            enforce: 0,
            policy: 0,
            log: crate::event::level::ANSWERED,
            clients: 0,
            pass_unparsed: 0,
            ttl,
            v4: [0; 4],
            v6: [0; 16],
            answers: 0,
            _pad: [0; 3],
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new(response::NXDOMAIN, Config::DEFAULT_TTL)
    }
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}

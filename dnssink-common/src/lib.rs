//! The pure logic of dnssink, shared by the BPF program and userspace.
//!
//! The data path reads top to bottom: a frame's bytes ([`Packet`]) -> the DNS question
//! ([`name::walk`]) -> the per-label hashes ([`hash`]) -> the rule lookup ([`rule::Verdict`])
//! -> the answer ([`answer`]). Everything here is `no_std`, allocation-free and written with
//! constant loop bounds so that the BPF verifier accepts it, and it is tested on the host.
#![no_std]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

pub mod answer;
pub mod config;
pub mod counters;
pub mod csum;
pub mod event;
pub mod hash;
pub mod name;
pub mod policy;
pub mod query;
pub mod rule;
pub mod table;
pub mod tcp;
pub mod wire;

/// Random access to the bytes of a DNS message. The BPF side implements it for the message's
/// start, copied into map memory, with each index masked into its buffer; the host implements
/// it for byte slices.
pub trait Packet {
    /// How many bytes there are.
    fn size(&self) -> usize;
    /// The byte at `off`, which the caller has checked is below [`Packet::size`]: no branch.
    fn at(&self, off: usize) -> u8;
}

impl Packet for [u8] {
    #[inline(always)]
    fn size(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn at(&self, off: usize) -> u8 {
        self.get(off).copied().unwrap_or(0)
    }
}

/// A helper's length `n`, from 1 to `max` (a power of two), computed so that a verifier
/// bounds it to 1..=`max` on the register the helper gets: verifiers as old as 6.1 learn no
/// lower bound from a check `n != 0`, and LLVM drops a mask it can prove redundant.
#[inline(always)]
pub fn helper_len(n: u32, max: u32) -> u32 {
    ((hide(n as u64) as u32).wrapping_sub(1) & (max - 1)) + 1
}

/// `x`, unchanged, as a value the compiler knows nothing about.
///
/// In BPF an add of 0 in an asm statement: LLVM would otherwise see through the bit
/// arithmetic that keeps a loop free of branches (`name::walk`) and turn it back into
/// compares and selects, which the BPF backend makes into branches. (An empty asm statement
/// would leave a line-info record on no instruction, which the kernel refuses.)
#[inline(always)]
pub fn hide(x: u64) -> u64 {
    #[cfg(target_arch = "bpf")]
    {
        let mut r = x;
        // SAFETY: an add of 0 to a register.
        unsafe { core::arch::asm!("{0} += 0", inout(reg) r, options(pure, nomem, nostack)) };
        r
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        x
    }
}

/// Names of the BPF maps, shared so that userspace asks for exactly what the program declares.
/// Names of the programs' read-only globals, which userspace sets before loading them.
pub mod globals {
    /// Nonzero when the kernel has `bpf_xdp_load_bytes`.
    pub const LOAD_BYTES: &str = "LOAD_BYTES";
    /// Nonzero for the name walk with a branch per byte, where the verifier takes it.
    pub const BRANCHING_WALK: &str = "BRANCHING_WALK";
}

pub mod maps {
    pub const TABLES: &str = "TABLES";
    pub const RESOLVERS: &str = "RESOLVERS";
    pub const PORTS: &str = "PORTS";
    pub const BLOCK4: &str = "BLOCK4";
    pub const BLOCK6: &str = "BLOCK6";
    pub const CONFIG: &str = "CONFIG";
    pub const ANSWERS: &str = "ANSWERS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const SCRATCH: &str = "SCRATCH";
    pub const EVENTS: &str = "EVENTS";
    pub const CLIENTS: &str = "CLIENTS";
    pub const TCP_FLOWS: &str = "TCP_FLOWS";
    pub const TCP_SCRATCH: &str = "TCP_SCRATCH";
    /// Room in the RESOLVERS map (--resolver).
    pub const RESOLVERS_MAX: u32 = 64;
    /// Room in the PORTS map (--block-port).
    pub const PORTS_MAX: u32 = 256;
    /// Room in the CLIENTS map (--clients).
    pub const CLIENTS_MAX: usize = 1024;
    /// Every map, for pinning.
    pub const ALL: &[&str] = &[
        TABLES,
        RESOLVERS,
        PORTS,
        BLOCK4,
        BLOCK6,
        CONFIG,
        ANSWERS,
        COUNTERS,
        SCRATCH,
        EVENTS,
        CLIENTS,
        TCP_FLOWS,
        TCP_SCRATCH,
    ];
}

/// Flags of the rule table's maps: `BPF_F_INNER_MAP` (tables of any size fit the slot) and
/// `BPF_F_MMAPABLE` (userspace writes a new table with one copy, not a syscall a bucket).
pub const TABLE_MAP_FLAGS: u32 = (1 << 12) | (1 << 10);

/// The name of the XDP program in the object file.
pub const PROGRAM: &str = "dnssink";
/// The name of the tc program for DNS over TCP.
pub const TCP_PROGRAM: &str = "dnssink_tcp";

//! Every map of the two programs, and the read-only globals that userspace sets before
//! loading (`dnssink::bpf` opens them by these names), with typed accessors. The types of
//! their values live with the logic that owns their layout: `dnssink_common` for what
//! userspace writes or reads, and the module that uses a per-CPU buffer for its own.

use aya_ebpf::{
    Global,
    btf_maps::{Array as BtfArray, ArrayOfMaps, LpmTrie},
    macros::{btf_map, map},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use dnssink_common::{
    answer::{TEMPLATES, Template},
    config::Config,
    counters::COUNT,
    maps as limits,
    policy::IpRule,
    table::Bucket,
    tcp::{FlowKey, FlowState},
};

use crate::{question::Message, scratch::Scratch, tcp::TcpScratch};

// --- Written by userspace ---

/// What the program answers and enforces (`dnssink_common::config`), written whole by
/// userspace after the other maps, so that a change is live at once. Read once per packet
/// by each program, and once more by the answer builder, a subprogram that cannot take a
/// pointer into the caller's map value.
#[map(name = "CONFIG")]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// The answers of the config (`answer::templates`), in two halves of [`TEMPLATES`]: the
/// config says which half is its own (`Config::answers`).
#[map(name = "ANSWERS")]
static ANSWERS: Array<Template> = Array::with_max_entries(2 * TEMPLATES as u32, 0);

/// The inner maps' flags (`dnssink_common::TABLE_MAP_FLAGS`).
const INNER: usize = dnssink_common::TABLE_MAP_FLAGS as usize;

/// One slot holding the live rule table, an ARRAY map of buckets that userspace builds to the
/// size of the lists. A reload builds the next table beside it and swaps it in here: the
/// program reads the slot once per lookup, so each lookup sees one table, old or new.
#[btf_map]
static TABLES: ArrayOfMaps<BtfArray<Bucket, 1, INNER>, 1> = ArrayOfMaps::new();

/// The internal resolvers (IPv4 as IPv4-mapped IPv6), from --resolver.
#[map(name = "RESOLVERS")]
pub static RESOLVERS: HashMap<[u8; 16], u8> = HashMap::with_max_entries(limits::RESOLVERS_MAX, 0);

/// Blocked (protocol, port) pairs, from --block-port (`policy::port_key`).
#[map(name = "PORTS")]
pub static PORTS: HashMap<u32, u8> = HashMap::with_max_entries(limits::PORTS_MAX, 0);

/// Room in each table of blocked destinations.
pub const IP_RULES: usize = 65536;

/// The blocked IPv4 and IPv6 destinations (--block-ip), one LPM trie each in a one-slot
/// array-of-maps: a reload swaps them in as it does the rule table.
#[btf_map]
pub static BLOCK4: ArrayOfMaps<LpmTrie<[u8; 4], IpRule, IP_RULES>, 1> = ArrayOfMaps::new();
#[btf_map]
pub static BLOCK6: ArrayOfMaps<LpmTrie<[u8; 16], IpRule, IP_RULES>, 1> = ArrayOfMaps::new();

/// The networks whose queries may be answered (--clients; by default the interface's own
/// subnets), IPv4 as IPv4-mapped IPv6.
#[btf_map]
pub static CLIENTS: LpmTrie<[u8; 16], u8, { limits::CLIENTS_MAX }> = LpmTrie::new();

/// Whether the kernel has `bpf_xdp_load_bytes` (Linux 5.18): set by userspace from a helper
/// probe before the program is loaded. A global in frozen read-only data, so the verifier
/// reads it as a constant and checks only the branch it picks: a kernel without the helper
/// never sees its call.
#[unsafe(no_mangle)]
static LOAD_BYTES: Global<u8> = Global::new(0);

/// Which name walk the program runs: `name::walk_branching`, fewer instructions per byte,
/// where the kernel's verifier takes it, else `name::walk`. Set by userspace before loading
/// (a test load picks it); read-only data, so the verifier checks only the walk picked.
#[unsafe(no_mangle)]
static BRANCHING_WALK: Global<u8> = Global::new(0);

// --- Read by userspace ---

/// What happened to each frame (indices in `dnssink_common::counters`).
#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNT, 0);

/// The query log (`dnssink_common::event::Event`, each in the smallest room for its name,
/// `event::ROOM_WORDS`): by default room for 900 to 3,600 events; userspace sizes it with
/// `--log-buffer`.
#[map(name = "EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

// --- The programs' own ---

/// The connections from clients to resolvers, by the client's sequence numbers.
#[map(name = "TCP_FLOWS")]
pub static TCP_FLOWS: LruHashMap<FlowKey, FlowState> = LruHashMap::with_max_entries(8192, 0);

/// Per-CPU memory for one packet: the copied message and its question.
#[map(name = "MESSAGE")]
static MESSAGE: PerCpuArray<Message> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU memory for one packet: the label hashes, what becomes of the query, the answer.
#[map(name = "SCRATCH")]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU memory for one TCP segment.
#[map(name = "TCP_SCRATCH")]
static TCP_SCRATCH: PerCpuArray<TcpScratch> = PerCpuArray::with_max_entries(1, 0);

/// The configuration.
#[inline(always)]
pub fn config() -> Option<&'static Config> {
    CONFIG.get(0)
}

/// Answer template `i` (`answer::template_index`) of the config whose half is `half`.
#[inline(always)]
pub fn template(half: u8, i: usize) -> Option<&'static Template> {
    ANSWERS.get(((half & 1) as usize * TEMPLATES + i) as u32)
}

/// The live rule table.
#[inline(always)]
pub fn table() -> Option<&'static BtfArray<Bucket, 1, INNER>> {
    TABLES.get(0)
}

/// Adds one to counter `idx`.
#[inline(always)]
pub fn bump(idx: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(idx) {
        unsafe { *p += 1 };
    }
}

#[inline(always)]
pub fn load_bytes() -> bool {
    LOAD_BYTES.load() != 0
}

#[inline(always)]
pub fn branching_walk() -> bool {
    BRANCHING_WALK.load() != 0
}

// SAFETY (the three accessors below): each CPU has its own value, and a program runs one
// packet at a time on a CPU, without preemption (the TCP program runs after the XDP program
// is done with a packet): no value is ever shared.

/// This CPU's message buffer.
#[inline(always)]
pub fn message() -> Option<&'static mut Message> {
    unsafe { MESSAGE.get_ptr_mut(0).map(|p| &mut *p) }
}

/// This CPU's scratch.
#[inline(always)]
pub fn scratch() -> Option<&'static mut Scratch> {
    unsafe { SCRATCH.get_ptr_mut(0).map(|p| &mut *p) }
}

/// This CPU's TCP scratch.
#[inline(always)]
pub fn tcp_scratch() -> Option<&'static mut TcpScratch> {
    TCP_SCRATCH.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

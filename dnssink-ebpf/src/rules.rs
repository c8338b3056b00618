//! Rule lookup: the full name and each parent domain, from the top-level domain down, in the
//! rule table (`dnssink_common::table`).

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    btf_maps::{Array, ArrayOfMaps},
    macros::{btf_map, map},
    maps::PerCpuArray,
};
use dnssink_common::{
    hash,
    name::{LABEL_SLOTS, Labels, MAX_LABELS},
    rule::Verdict,
    table::{self, Bucket},
};

/// The inner maps' flags (`dnssink_common::TABLE_MAP_FLAGS`).
const INNER: usize = dnssink_common::TABLE_MAP_FLAGS as usize;

/// One slot holding the live rule table, an ARRAY map of buckets that userspace builds to the
/// size of the lists. A reload builds the next table beside it and swaps it in here: the
/// program reads the slot once per packet, so each packet sees one table, old or new.
#[btf_map]
static TABLES: ArrayOfMaps<Array<Bucket, 1, INNER>, 1> = ArrayOfMaps::new();

/// Per-CPU working memory for one packet: the label hashes of the name (1 KiB, too big for
/// the stack) and their count.
///
/// Values that pass through map memory are unknown to the verifier. The label count lives
/// here so that what follows the walk is verified once, not once per count; [`Scratch::launder`]
/// does the same for the name length, so that what follows the walk is verified once, not
/// once per length.
#[repr(C)]
pub struct Scratch {
    hashes: [u64; LABEL_SLOTS],
    count: u64,
    tmp: core::cell::UnsafeCell<u64>,
    /// What becomes of the packet if it is not answered: 0 to pass, else a drop counter.
    unanswered: u64,
    /// The answer being built (`reply`): here, not on the stack under the program's.
    pub answer: dnssink_common::answer::Answer,
}

// SAFETY: each CPU has its own value, and XDP runs one packet at a time on a CPU, without
// preemption: no value is ever shared.
unsafe impl Sync for Scratch {}

#[map(name = "SCRATCH")]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

impl Scratch {
    /// This CPU's scratch.
    #[inline(always)]
    pub fn get() -> Option<&'static mut Scratch> {
        unsafe { SCRATCH.get_ptr_mut(0).map(|p| &mut *p) }
    }

    /// Keeps what becomes of the query if it is not answered. In map memory, it is no value
    /// the verifier tracks through the DNS path: three possible values in a register would
    /// triple every state it walks.
    #[inline(always)]
    pub fn set_unanswered(&mut self, drop: Option<u32>) {
        unsafe { write_volatile(&mut self.unanswered, drop.map_or(0, |c| c as u64 + 1)) };
    }

    /// The drop counter kept by `set_unanswered`, or `policy::PASS`.
    #[inline(always)]
    pub fn unanswered(&self) -> u32 {
        match unsafe { read_volatile(&self.unanswered) } {
            0 => dnssink_common::policy::PASS,
            n => (n - 1) as u32,
        }
    }

    #[inline(always)]
    fn count(&self) -> usize {
        unsafe { read_volatile(&self.count) as usize }
    }

    /// `v`, as a value the verifier knows nothing about.
    #[inline(always)]
    pub fn launder(&self, v: usize) -> usize {
        unsafe {
            write_volatile(self.tmp.get(), v as u64);
            read_volatile(self.tmp.get()) as usize
        }
    }

    /// Looks up every suffix of the walked name, from the top-level domain down.
    #[inline(always)]
    pub fn lookup(&self) -> Verdict {
        let mut v = Verdict::default();
        let Some(rules) = TABLES.get(0) else {
            return v;
        };
        let Some(header) = rules.get(table::HEADER) else {
            return v;
        };
        if header[table::H_MAGIC] != table::MAGIC {
            return v;
        }
        let n = header[table::H_BUCKETS];
        let flags = |h: u64| dnssink_rule_flags(h, n) as u8;
        let mut h = header[table::H_ROOT];
        // The parents, from the top-level domain down (labels - 1 of them); then the whole
        // name, outside the loop, so that the loop body has one branch fewer to verify.
        let labels = self.count() & (LABEL_SLOTS - 1);
        let mut j = 0usize;
        while j < MAX_LABELS {
            if j + 1 >= labels {
                break;
            }
            h = hash::combine(h, self.hashes[(labels - 1 - j) & (LABEL_SLOTS - 1)]);
            v.visit(flags(h), false);
            j += 1;
        }
        if labels > 0 {
            h = hash::combine(h, self.hashes[0]);
            v.visit(flags(h), true);
        }
        v
    }
}

/// The rule flags stored for the name hash `h` in the live table of `n` buckets. A global
/// function of plain numbers (the table is looked up again inside): the verifier checks it
/// once, on its own, rather than at every iteration of the lookup loop with the caller's
/// state. (Verifiers before 6.12 refuse a subprogram whose argument points into the caller's
/// stack.)
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_rule_flags(h: u64, n: u64) -> u64 {
    let Some(rules) = TABLES.get(0) else {
        return 0;
    };
    let tag = table::tag(h);
    let (b1, b2) = table::buckets(tag, n);
    let f = rules
        .get(b1)
        .map_or(0, |b| table::find_with(b, tag, dnssink_common::hide))
        | rules
            .get(b2)
            .map_or(0, |b| table::find_with(b, tag, dnssink_common::hide));
    f as u64
}

impl Labels for Scratch {
    #[inline(always)]
    fn slots(&mut self) -> &mut [u64; LABEL_SLOTS] {
        &mut self.hashes
    }

    #[inline(always)]
    fn set_count(&mut self, n: usize) {
        unsafe { write_volatile(&mut self.count, n as u64) };
    }

    #[inline(always)]
    fn push(&mut self, hash: u64) {
        let n = self.count() & (LABEL_SLOTS - 1);
        self.hashes[n] = hash;
        unsafe { write_volatile(&mut self.count, n as u64 + 1) };
    }

    #[inline(always)]
    fn opaque(&mut self, v: usize) -> usize {
        self.launder(v)
    }
}

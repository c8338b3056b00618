//! Rule lookup: the full name and each parent domain, from the top-level domain down.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use dnssink_common::{
    hash,
    name::{LABEL_SLOTS, Labels, MAX_LABELS},
    rule::Verdict,
};

/// Name hash -> rule flags (`dnssink_common::rule`). Userspace sizes it to the list.
#[map(name = "RULES")]
static RULES: HashMap<u64, u8> = HashMap::with_max_entries(1, 0);

/// Per-CPU working memory for one packet: the label hashes of the name (1 KiB, too big for
/// the stack) and their count.
///
/// Values that pass through map memory are unknown to the verifier. The label count lives
/// here so that the name walk is verified once, not once per count; [`Scratch::launder`]
/// does the same for the name length, so that what follows the walk is verified once, not
/// once per length.
#[repr(C)]
pub struct Scratch {
    hashes: [u64; LABEL_SLOTS],
    count: u64,
    tmp: core::cell::UnsafeCell<u64>,
}

// SAFETY: each CPU has its own value, and XDP runs one packet at a time on a CPU, without
// preemption: no value is ever shared.
unsafe impl Sync for Scratch {}

#[map(name = "SCRATCH")]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

impl Scratch {
    /// This CPU's scratch, emptied.
    #[inline(always)]
    pub fn get() -> Option<&'static mut Scratch> {
        let s = unsafe { &mut *SCRATCH.get_ptr_mut(0)? };
        unsafe { write_volatile(&mut s.count, 0) };
        Some(s)
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
        let labels = self.count() & (LABEL_SLOTS - 1);
        let mut v = Verdict::default();
        let mut h = hash::ROOT;
        let mut j = 0usize;
        while j < MAX_LABELS {
            if j >= labels {
                break;
            }
            let k = (labels - 1 - j) & (LABEL_SLOTS - 1);
            h = hash::combine(h, self.hashes[k]);
            if let Some(flags) = unsafe { RULES.get(&h) } {
                v.visit(*flags, k == 0);
            }
            j += 1;
        }
        v
    }
}

impl Labels for Scratch {
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

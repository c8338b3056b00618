//! The per-CPU counters (indices in `dnssink_common::counters`).

use aya_ebpf::{macros::map, maps::PerCpuArray};
use dnssink_common::counters::COUNT;

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNT, 0);

#[inline(always)]
pub fn bump(idx: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(idx) {
        unsafe { *p += 1 };
    }
}

//! Per-CPU working memory for one packet (`maps::scratch`): the label hashes that the name
//! walk writes and the lookup reads, what becomes of the query if it is not answered, and the
//! answer being built.

use core::ptr::{read_volatile, write_volatile};

use dnssink_common::name::{LABEL_SLOTS, Labels};

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
    /// The reader's position (plus one) when this CPU last woke the query log's reader
    /// (`log::wakeup`).
    woken_at: u64,
    /// Events this CPU has logged, to look at the query log's fill only now and then.
    logged: u64,
}

// SAFETY: each CPU has its own value, and XDP runs one packet at a time on a CPU, without
// preemption: no value is ever shared.
unsafe impl Sync for Scratch {}

impl Scratch {
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
    pub fn woken_at(&self) -> u64 {
        unsafe { read_volatile(&self.woken_at) }
    }

    #[inline(always)]
    pub fn set_woken_at(&mut self, pos: u64) {
        unsafe { write_volatile(&mut self.woken_at, pos) };
    }

    /// Counts one logged event: true for every `n`th (a power of two).
    #[inline(always)]
    pub fn count_logged(&mut self, n: u64) -> bool {
        let c = unsafe { read_volatile(&self.logged) } + 1;
        unsafe { write_volatile(&mut self.logged, c) };
        c & (n - 1) == 0
    }

    /// The labels walked.
    #[inline(always)]
    pub fn count(&self) -> usize {
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

    /// The hash of label `i` (0 is the first label), masked into the slots.
    #[inline(always)]
    pub fn label(&self, i: usize) -> u64 {
        self.hashes[i & (LABEL_SLOTS - 1)]
    }
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

//! Rule lookup: the full name and each parent domain, from the top-level domain down, in the
//! live rule table, by the one lookup of `dnssink_common::table` that `dnssink query` runs
//! too.

use aya_ebpf::btf_maps::Array;
use dnssink_common::{
    rule::Verdict,
    table::{self, Bucket, Buckets},
};

use crate::{maps, scratch::Scratch};

/// The live table, as the shared lookup reads it.
struct Live<const F: usize>(&'static Array<Bucket, 1, F>);

impl<const F: usize> Buckets for Live<F> {
    #[inline(always)]
    fn bucket(&self, i: u32) -> Option<&Bucket> {
        self.0.get(i)
    }
}

/// The verdict for the name walked into `scratch`.
#[inline(always)]
pub fn verdict(scratch: &Scratch) -> Verdict {
    let Some(shape) = maps::table().and_then(|t| table::shape(&Live(t))) else {
        return Verdict::default();
    };
    table::lookup(
        shape.root,
        scratch.count(),
        |i| scratch.label(i),
        |h| dnssink_rule_flags(h, shape.buckets, shape.filter) as u8,
    )
}

/// The rule flags stored for the name hash `h` in the live table of `n` buckets and `f`
/// filter blocks (the filter is read first: most hashes stop there). A global
/// function of plain numbers (the table is looked up again inside): the verifier checks it
/// once, on its own, rather than at every iteration of the lookup loop with the caller's
/// state. (Verifiers before 6.12 refuse a subprogram whose argument points into the caller's
/// stack.)
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_rule_flags(h: u64, n: u64, f: u64) -> u64 {
    let Some(t) = maps::table() else {
        return 0;
    };
    table::flags(&Live(t), h, n, f, dnssink_common::hide) as u64
}

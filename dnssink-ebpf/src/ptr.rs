//! The one bounds-checked way to touch the frame.

use aya_ebpf::programs::XdpContext;

/// A pointer to a `T` at `off` bytes into the frame, if the whole `T` lies inside it.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    let p = start + off;
    if add_opaque(p, core::mem::size_of::<T>()) > end {
        return None;
    }
    Some(p as *mut T)
}

/// `p + n`, hidden from LLVM so that the check stays `p + n > end`. Left to itself LLVM
/// turns `p + 1 > end` into `p >= end`, from which the verifier learns no range when the
/// pointer has no constant offset.
#[inline(always)]
fn add_opaque(p: usize, n: usize) -> usize {
    let mut r = p;
    unsafe {
        core::arch::asm!("{0} += {1}", inout(reg) r, in(reg) n, options(pure, nomem, nostack))
    };
    r
}

/// Reads a `T` (any alignment) at `off`.
#[inline(always)]
pub fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    ptr_at::<T>(ctx, off).map(|p| unsafe { p.read_unaligned() })
}

/// Writes a `T` (any alignment) at `off`; false if it does not fit.
#[inline(always)]
pub fn write<T>(ctx: &XdpContext, off: usize, v: T) -> bool {
    match ptr_at::<T>(ctx, off) {
        Some(p) => {
            unsafe { p.write_unaligned(v) };
            true
        }
        None => false,
    }
}

/// The frame as `dnssink_common::Packet`, for the shared parsers.
pub struct Frame<'a>(pub &'a XdpContext);

impl dnssink_common::Packet for Frame<'_> {
    #[inline(always)]
    fn byte(&self, off: usize) -> Option<u8> {
        read::<u8>(self.0, off)
    }
}

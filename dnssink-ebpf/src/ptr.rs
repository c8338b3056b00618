//! The one bounds-checked way to touch the frame, and the copies out of it.

use aya_ebpf::{bindings::xdp_md, helpers::bpf_xdp_load_bytes, programs::XdpContext};
use dnssink_common::counters as c;

use crate::{
    maps,
    question::{MSG_MAX, MSG_READ},
};

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

/// `N` bytes of the frame, bounds-checked once, whose fields at constant offsets are then
/// read and written without a check each.
pub struct Span<const N: usize>(*mut u8);

impl<const N: usize> Span<N> {
    /// The `N` bytes at `off`, if they all lie in the frame.
    #[inline(always)]
    pub fn at(ctx: &XdpContext, off: usize) -> Option<Span<N>> {
        ptr_at::<[u8; N]>(ctx, off).map(|p| Span(p.cast()))
    }

    /// The `T` at `at` (any alignment). `at` is a constant, and `at + size_of::<T>()` at
    /// most `N`: the verifier refuses the program otherwise.
    #[inline(always)]
    pub fn get<T: Copy>(&self, at: usize) -> T {
        debug_assert!(at + core::mem::size_of::<T>() <= N);
        // SAFETY: within the span, which lies in the frame.
        unsafe { self.0.add(at).cast::<T>().read_unaligned() }
    }

    /// Writes a `T` at `at` (any alignment), as [`Span::get`] reads one.
    #[inline(always)]
    pub fn put<T>(&self, at: usize, v: T) {
        debug_assert!(at + core::mem::size_of::<T>() <= N);
        // SAFETY: within the span, which lies in the frame.
        unsafe { self.0.add(at).cast::<T>().write_unaligned(v) }
    }

    /// Swaps the `M` bytes at `a` and at `b`.
    #[inline(always)]
    pub fn swap<const M: usize>(&self, a: usize, b: usize) {
        let (x, y) = (self.get::<[u8; M]>(a), self.get::<[u8; M]>(b));
        self.put(a, y);
        self.put(b, x);
    }
}

#[inline(always)]
fn has_load_bytes() -> bool {
    crate::maps::load_bytes()
}

/// Copies the `N` bytes at `off` into `out`; false if they are not all in the frame. With the
/// helper where the kernel has it: a read through a packet pointer leaves a pointer range
/// that the verifier keeps apart from other paths for the rest of the program.
#[inline(always)]
pub fn load<const N: usize>(ctx: *mut xdp_md, off: usize, out: &mut [u8; N]) -> bool {
    if has_load_bytes() {
        unsafe { bpf_xdp_load_bytes(ctx, off as u32, out.as_mut_ptr().cast(), N as u32) == 0 }
    } else {
        match read::<[u8; N]>(&XdpContext::new(ctx), off) {
            Some(v) => {
                *out = v;
                true
            }
            None => false,
        }
    }
}

/// Copies the DNS message at `off`, `n` bytes of it (at most [`MSG_READ`]), into this CPU's
/// [`Message`]: 0, or the counter of a frame too short for it.
///
/// A global function: without the helper it copies a byte per iteration through packet
/// pointers, each bounds-checked, and the verifier checks that loop here once rather than
/// with every path of the caller.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dnssink_copy_message(ctx: *mut xdp_md, off: u32, n: u32) -> u32 {
    let Some(m) = maps::message() else {
        return c::TRUNCATED;
    };
    // 1 to MSG_READ bytes, in a form the verifier bounds on the register the helper gets.
    let n = ((n.min(MSG_READ as u32)).wrapping_sub(1) & (MSG_MAX as u32 - 1)) + 1;
    let off = off & 0x3ff;
    if has_load_bytes() {
        if unsafe { bpf_xdp_load_bytes(ctx, off, m.bytes.as_mut_ptr().cast(), n) } != 0 {
            return c::TRUNCATED;
        }
    } else {
        let ctx = XdpContext::new(ctx);
        let mut i = 0;
        while i < MSG_READ {
            if i >= n as usize {
                break;
            }
            let Some(b) = read::<u8>(&ctx, off as usize + i) else {
                return c::TRUNCATED;
            };
            m.bytes[i] = b;
            i += 1;
        }
    }
    m.set_len(n as usize);
    0
}

//! The global allocator of crv's binaries: mimalloc, asked for a plain block wherever a plain
//! block's alignment is enough.
//!
//! The `mimalloc` crate's `GlobalAlloc` calls `mi_malloc_aligned` for every allocation. Its
//! fast path finds a small block as quickly as `mi_malloc` does, but past 1 KiB, or when the
//! size's block is not a power of two, it takes mimalloc's generic aligned path (an
//! over-allocation and an adjustment, ~270 instructions more) even for an alignment every
//! block has. A mimalloc block of 16 bytes or more is 16-byte aligned (`MI_MAX_ALIGN_SIZE`:
//! its size classes are multiples of two words on 64-bit targets), a smaller one word-aligned;
//! so a layout whose alignment is at most 16 and at most its size (the rule of Rust's own
//! `System` allocator on unix) gets `mi_malloc`, and any other `mi_malloc_aligned`, as before.
//! Measured with `loadtest/instructions.sh` (loadtest/README.md).

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// mimalloc as the global allocator: `#[global_allocator] static GLOBAL: Mimalloc = Mimalloc;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mimalloc;

/// The alignment of every mimalloc block of at least this many bytes.
const PLAIN_ALIGN: usize = 16;

/// Whether a plain block of `size` bytes is aligned to `align`.
fn plain(size: usize, align: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

/// A block for `layout` from `plain_block` (`mi_malloc`, `mi_zalloc`) where its alignment is
/// enough, else from `aligned_block` (their `_aligned` forms); null when memory is out.
///
/// # Safety
///
/// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
#[inline]
unsafe fn block(
    layout: Layout,
    plain_block: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned_block: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    let (size, align) = (layout.size(), layout.align());
    // SAFETY: C allocation calls of mimalloc's contract; a null result is returned as
    // `GlobalAlloc` asks.
    unsafe {
        if plain(size, align) {
            plain_block(size).cast()
        } else {
            aligned_block(size, align).cast()
        }
    }
}

// SAFETY: every method forwards to the mimalloc function of the same contract; a plain block
// is asked for only where its alignment is guaranteed (above), and `mi_free`/`mi_realloc`
// take any block mimalloc handed out, aligned or not.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as `block` requires.
        unsafe { block(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { block(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: the caller passes a block this allocator returned and a valid new size.
        unsafe {
            if plain(new_size, align) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, align).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size class and alignment a program asks for: each block is aligned, holds what is
    /// written into it, and keeps it through a reallocation to a larger and a smaller size.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let sizes = (1..=64).chain([96, 100, 1000, 1024, 1500, 4095, 8192, 70_000, 3 << 20]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with the layout it has.
                unsafe {
                    let zeroed = Mimalloc.alloc_zeroed(layout);
                    assert!(
                        !zeroed.is_null() && (zeroed as usize).is_multiple_of(align),
                        "{layout:?}"
                    );
                    assert!(
                        (0..size).all(|at| *zeroed.add(at) == 0),
                        "zeroed {layout:?}"
                    );
                    Mimalloc.dealloc(zeroed, layout);
                    for new_size in [size * 3, size.div_ceil(2)] {
                        let block = Mimalloc.alloc(layout);
                        assert!(
                            !block.is_null() && (block as usize).is_multiple_of(align),
                            "{layout:?}"
                        );
                        block.write_bytes(0xa5, size);
                        let moved = Mimalloc.realloc(block, layout, new_size);
                        assert!(
                            (moved as usize).is_multiple_of(align),
                            "{layout:?} -> {new_size}"
                        );
                        let kept = size.min(new_size);
                        assert!((0..kept).all(|at| *moved.add(at) == 0xa5), "{layout:?}");
                        Mimalloc.dealloc(moved, Layout::from_size_align(new_size, align).unwrap());
                    }
                }
            }
        }
    }
}

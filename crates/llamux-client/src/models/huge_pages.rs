//! Large buffers in transparent huge pages: the global allocator of the binaries that run the
//! engine.
//!
//! Decoding streams every weight once per token. Read through 4 KiB pages, that is a TLB miss
//! every 4 KiB, and in a virtual machine each miss walks two sets of page tables; in 2 MiB pages
//! the walks all but vanish (one session's decoding of a TinyLlama-shaped model on one thread here:
//! 38–40 → 43–45 tokens/s). The file's page cache cannot be mapped in huge pages, so the weights a token reads
//! are copied at load time into memory of the process's own ([`super::loaded::Residence`]), which
//! this allocator places in huge pages: every allocation of [`HUGE_MIN`] bytes or more is an
//! anonymous mapping aligned to 2 MiB and advised `MADV_HUGEPAGE`. Smaller ones go to the system
//! allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// The huge page size on x86-64 and on aarch64 with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;

/// Allocations at least this big get mappings of their own in huge pages.
pub const HUGE_MIN: usize = 4 << 20;

/// The global allocator: the system's, except for allocations of [`HUGE_MIN`] bytes or more.
pub struct HugePageAlloc;

/// Bytes mapped for an allocation of `size` bytes (whole huge pages).
fn mapped_len(size: usize) -> Option<usize> {
    size.checked_next_multiple_of(HUGE_PAGE)
}

// SAFETY: small layouts are passed to `System` unchanged. Large ones (`size >= HUGE_MIN`, decided
// by the layout alone, so `dealloc` takes the same path as the `alloc` that made the pointer) are
// mappings of `mapped_len(size)` bytes at a 2 MiB boundary — aligned for any `align` up to 2 MiB
// (larger alignments are refused with null) — released whole by `munmap` in `dealloc`.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < HUGE_MIN {
            // SAFETY: the caller's contract for `layout` is passed on.
            return unsafe { System.alloc(layout) };
        }
        if layout.align() > HUGE_PAGE {
            return std::ptr::null_mut();
        }
        let Some(len) = mapped_len(layout.size()) else { return std::ptr::null_mut() };
        let Some(span) = len.checked_add(HUGE_PAGE) else { return std::ptr::null_mut() };
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let start = base as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (aligned - start, start + span - (aligned + len));
        // SAFETY: the head and tail trimmed off are inside the mapping just made, outside the
        // `len` bytes handed out; advising the kept range only changes how it is backed.
        unsafe {
            if head > 0 {
                libc::munmap(base, head);
            }
            if tail > 0 {
                libc::munmap((aligned + len) as *mut libc::c_void, tail);
            }
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
        MAPPED.store(true, Ordering::Relaxed);
        aligned as *mut u8
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < HUGE_MIN {
            // SAFETY: as in `alloc`.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: fresh anonymous mappings read as zeros.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() < HUGE_MIN {
            // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
            return unsafe { System.dealloc(ptr, layout) };
        }
        if let Some(len) = mapped_len(layout.size()) {
            // SAFETY: `ptr` is the start of a mapping of `len` bytes made by `alloc`.
            unsafe { libc::munmap(ptr.cast(), len) };
        }
    }
}

/// Set by [`HugePageAlloc`] whenever it maps a buffer.
static MAPPED: AtomicBool = AtomicBool::new(false);

/// Whether this process's global allocator is [`HugePageAlloc`] (a large probe buffer went
/// through it).
pub fn in_use() -> bool {
    let probe: Vec<u8> = Vec::with_capacity(HUGE_MIN);
    drop(std::hint::black_box(probe));
    MAPPED.load(Ordering::Relaxed)
}

/// Whether the kernel gives huge pages to mappings that ask (`always` or `madvise` in
/// `/sys/kernel/mm/transparent_hugepage/enabled`).
pub fn available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| s.contains("[always]") || s.contains("[madvise]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_allocations_are_aligned_zeroed_and_usable() {
        let a = HugePageAlloc;
        for size in [HUGE_MIN, HUGE_MIN + 1, 3 * HUGE_PAGE + 4097] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: the layout has a non-zero size; the pointer is freed with the same layout.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % HUGE_PAGE, 0, "{size} bytes at a 2 MiB boundary");
                let s = std::slice::from_raw_parts_mut(p, size);
                assert!(s.iter().all(|&b| b == 0));
                s.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
                assert!(s.iter().enumerate().all(|(i, &b)| b == i as u8));
                a.dealloc(p, layout);
            }
        }
        // Small ones are the system allocator's; alignments beyond a huge page are refused.
        // SAFETY: as above.
        unsafe {
            let small = Layout::from_size_align(100, 8).unwrap();
            let p = a.alloc(small);
            assert!(!p.is_null());
            a.dealloc(p, small);
            assert!(a.alloc(Layout::from_size_align(HUGE_MIN, 4 * HUGE_PAGE).unwrap()).is_null());
        }
    }

    #[test]
    fn vectors_grow_across_the_threshold() {
        let a = HugePageAlloc;
        let small = Layout::from_size_align(HUGE_MIN - 8, 8).unwrap();
        // SAFETY: `realloc`'s default moves the bytes between the two paths; freed with the new layout.
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            std::slice::from_raw_parts_mut(p, small.size()).fill(7);
            let q = a.realloc(p, small, 2 * HUGE_MIN);
            assert!(!q.is_null());
            assert!(std::slice::from_raw_parts(q, small.size()).iter().all(|&b| b == 7));
            a.dealloc(q, Layout::from_size_align(2 * HUGE_MIN, 8).unwrap());
        }
    }
}

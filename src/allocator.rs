//! The memory allocator of the `palisade` binary (set in `src/main.rs`):
//! mimalloc for everything but the operator, the platform's allocator
//! (glibc's, or musl's in the container image) for the operator.
//!
//! Why two: a scan is short and decodes on every core; the operator runs
//! for months and keeps a cache that grows by small pieces. Measured
//! (numbers in `docs/performance.md`): with mimalloc a scan of a million
//! objects took 30 % less time and 10 % less memory than with glibc, and
//! the operator 40 % less CPU but 15 % more memory (169 MiB against 146 MiB
//! at 10,000 workloads, glibc capped at two arenas): mimalloc's pages
//! each hold objects of one size, and an operator's long-lived objects of
//! every size keep many pages partly used.
//!
//! So the allocator starts with mimalloc, and `palisade operator` switches
//! new allocations to the platform's before it starts any thread
//! ([`use_system_allocator`]). Memory is always freed by the allocator it
//! came from: mimalloc knows its own memory ([`mimalloc_owns`], the page
//! map its own `free` uses).
//!
//! mimalloc runs without transparent huge pages (the crate's `no_thp`
//! feature: a 2 MiB page is resident as a whole once one byte of it is)
//! and gives freed memory back to the system after [`PURGE_DELAY_MS`]
//! rather than its default of one second, which a scan of a few seconds
//! never reaches.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_int, c_long, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the `mi_option_t` of the vendored
/// mimalloc 3; the `-sys` crate names only older options). A test checks
/// that this option starts at the purge delay's documented default.
const PURGE_DELAY_OPTION: c_int = 15;
/// mimalloc's default purge delay, in milliseconds.
#[cfg(test)]
const DEFAULT_PURGE_DELAY_MS: c_long = 1000;
/// How long freed memory stays with the process before it is given back.
pub const PURGE_DELAY_MS: c_long = 3;

/// Set once every later allocation is to come from the platform's
/// allocator.
static SYSTEM_FROM_NOW: AtomicBool = AtomicBool::new(false);

/// mimalloc, or the platform's allocator once [`use_system_allocator`] is
/// called; each block freed by the one it came from.
pub struct Allocator {
    use_system: &'static AtomicBool,
}

impl Allocator {
    /// The allocator [`use_system_allocator`] switches.
    pub const fn new() -> Allocator {
        Allocator {
            use_system: &SYSTEM_FROM_NOW,
        }
    }

    fn system(&self) -> bool {
        self.use_system.load(Ordering::Acquire)
    }

    /// Whether `ptr` came from the platform's allocator. Until the switch
    /// every block is mimalloc's, so a scan never asks mimalloc's page map.
    fn is_system_block(&self, ptr: *const u8) -> bool {
        self.system() && !mimalloc_owns(ptr)
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Allocator::new()
    }
}

/// Whether `ptr` is memory mimalloc handed out.
pub fn mimalloc_owns(ptr: *const u8) -> bool {
    // SAFETY: the lookup reads mimalloc's page map only; any address may
    // be asked about.
    unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast::<c_void>()) }
}

// SAFETY: every block is allocated by exactly one of two allocators, each
// meeting `GlobalAlloc`'s contract, and freed or resized by that same one
// (mimalloc's page map tells its blocks from the platform's).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe {
            match self.system() {
                true => System.alloc(layout),
                false => MiMalloc.alloc(layout),
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            match self.system() {
                true => System.alloc_zeroed(layout),
                false => MiMalloc.alloc_zeroed(layout),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the allocator it is given back to.
        unsafe {
            match self.is_system_block(ptr) {
                true => System.dealloc(ptr, layout),
                false => MiMalloc.dealloc(ptr, layout),
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; a block stays with its allocator.
        unsafe {
            match self.is_system_block(ptr) {
                true => System.realloc(ptr, layout, new_size),
                false => MiMalloc.realloc(ptr, layout, new_size),
            }
        }
    }
}

/// Sets mimalloc's options, unless the environment sets them
/// (`MIMALLOC_PURGE_DELAY`, read by mimalloc itself). Called first thing
/// in `main`.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer option; mimalloc
        // reads options atomically and takes any value for this one.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS) }
    }
}

/// From now on, memory comes from the platform's allocator (see the
/// module). Called by `palisade operator` before it starts any thread, so
/// that every thread sees the switch before it allocates.
pub fn use_system_allocator() {
    SYSTEM_FROM_NOW.store(true, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading an option has no preconditions.
        let before = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY_OPTION) };
        assert_eq!(
            before, DEFAULT_PURGE_DELAY_MS,
            "option {PURGE_DELAY_OPTION} is not mimalloc's purge delay"
        );
        tune();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY_OPTION) };
        assert_eq!(after, PURGE_DELAY_MS);
    }

    /// Freeing a block with the wrong allocator aborts the process (glibc
    /// checks its chunks) or corrupts it, so this test fails by crashing.
    #[test]
    fn memory_goes_back_to_the_allocator_it_came_from() {
        static SWITCH: AtomicBool = AtomicBool::new(false);
        let allocator = Allocator {
            use_system: &SWITCH,
        };
        let layout = Layout::from_size_align(48, 8).expect("layout");
        let larger = Layout::from_size_align(4096, 8).expect("layout");
        // SAFETY: every block is used within its layout and freed once.
        unsafe {
            let from_mimalloc = allocator.alloc(layout);
            let zeroed_mimalloc = allocator.alloc_zeroed(larger);
            assert!(!from_mimalloc.is_null() && mimalloc_owns(from_mimalloc));
            assert!(mimalloc_owns(zeroed_mimalloc) && *zeroed_mimalloc.add(4095) == 0);
            SWITCH.store(true, Ordering::Release);
            let from_system = allocator.alloc(layout);
            let zeroed_system = allocator.alloc_zeroed(larger);
            assert!(!from_system.is_null() && !mimalloc_owns(from_system));
            assert!(!mimalloc_owns(zeroed_system) && *zeroed_system.add(4095) == 0);
            from_mimalloc.write_bytes(7, 48);
            from_system.write_bytes(9, 48);
            // Grown after the switch, each block stays with its allocator
            // and keeps its bytes.
            let grown_mimalloc = allocator.realloc(from_mimalloc, layout, 4096);
            let grown_system = allocator.realloc(from_system, layout, 4096);
            assert!(mimalloc_owns(grown_mimalloc) && *grown_mimalloc.add(47) == 7);
            assert!(!mimalloc_owns(grown_system) && *grown_system.add(47) == 9);
            for block in [grown_mimalloc, grown_system, zeroed_mimalloc, zeroed_system] {
                allocator.dealloc(block, larger);
            }
        }
    }
}

//! An allocator for the fuzz binaries that remembers, per thread, the largest single request
//! since [`Largest::start`], so a target can assert that no input made the code under test
//! allocate more than the input justifies (the classic bug: a length read from the input and
//! allocated before the bytes are there). Requests are recorded before the system allocator
//! answers, so one it refuses is seen too. `tests/fuzz.rs` installs it as the global
//! allocator; without it the checks see nothing and pass.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator: the system's, with the record above.
pub struct Recording;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call goes to the system allocator unchanged; only a counter changes.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The largest single allocation on this thread from [`Largest::start`] on.
pub struct Largest;

impl Largest {
    /// Starts recording.
    pub fn start() -> Largest {
        LARGEST.with(|l| l.set(0));
        Largest
    }

    /// Panics if a single allocation since the start asked for more than `bound` bytes.
    pub fn check(&self, bound: usize) {
        let largest = LARGEST.with(Cell::get);
        assert!(largest <= bound, "one allocation of {largest} bytes, more than the {bound} this input justifies");
    }
}

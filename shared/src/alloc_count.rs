//! Test-only global allocator: counts, per thread, the bytes asked for and not yet freed, and
//! their peak since [`Peak::start`], so a test can show that a hostile input was refused
//! without a large allocation. Requests count when they are made, before the system
//! allocator answers, so a refused attempt shows too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

#[global_allocator]
static COUNTING: Counting = Counting;

thread_local! {
    // `isize`: a block freed on another thread than the one that made it counts down here.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(n: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + n as isize;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn sub(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get() - n as isize));
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            sub(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            sub(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            sub(new_size);
        } else {
            sub(layout.size());
        }
        p
    }
}

/// The most this thread held at once, beyond what it held at [`Peak::start`].
pub struct Peak(isize);

impl Peak {
    /// Starts measuring on this thread.
    pub fn start() -> Peak {
        let live = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(live));
        Peak(live)
    }

    /// Bytes held at most since the start, beyond what was held then.
    pub fn bytes(&self) -> usize {
        (PEAK.with(Cell::get) - self.0).max(0) as usize
    }
}

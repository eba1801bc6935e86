//! The binaries' global allocator: mimalloc, keeping freed memory for reuse.
//!
//! A training step allocates and frees the same large buffers (activations, patch
//! matrices, gradients: megabytes each) every time. glibc's allocator hands buffers that
//! large back to the operating system when they are freed, so the next step faulted every
//! page in again (240,000 page faults in 31 cifar steps at batch 32, each a TLB flush across
//! the cores: 8 % of the time). mimalloc keeps freed memory for reuse, but by default still
//! returns it to the system within about a second (its purge delay, 1000 ms): measured, that
//! left 22,000 page faults in 28 such steps; with [`keep_freed_memory`]'s delay, about 400
//! (mimalloc's arenas sit on 2 MiB transparent huge pages where the kernel allows them, so
//! each fault is larger; the cifar training step ran 1.12–1.18× faster, `README.md`, Speed).
//! Each binary declares
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: alexnet_common::allocator::MiMalloc = alexnet_common::allocator::MiMalloc;
//! ```
//!
//! and calls [`keep_freed_memory`] first thing in `main`.

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in `mimalloc.h`'s `mi_option_e` (the same position in mimalloc v2
/// and v3; `libmimalloc-sys` does not name it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays ready for reuse before mimalloc returns it to the system, in
/// milliseconds: far longer than a training step or a forward pass, short enough that a
/// process idle for minutes gives its memory back.
const PURGE_DELAY_MS: std::ffi::c_long = 100_000;

/// Keeps freed memory ready for reuse for 100 s instead of mimalloc's 1000 ms.
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores the value (mimalloc reads its options atomically).
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option at [`PURGE_DELAY`] is the purge delay: before it is set it holds
    /// `$MIMALLOC_PURGE_DELAY`, or the purge delay's default (mimalloc v3's `options.c`:
    /// 1000 ms; no neighbouring option has it).
    #[test]
    fn purge_delay_is_the_option_set() {
        let expected = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        // SAFETY: reading and setting an option.
        let before = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(before, expected);
        keep_freed_memory();
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) },
            PURGE_DELAY_MS
        );
    }
}

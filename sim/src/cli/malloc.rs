//! Allocator tuning for the `bootsim` process (glibc only).
//!
//! A run writes, reads and drops whole batch files of hundreds of KiB all
//! the time (archiving and backfill rewrite a day's batch). glibc serves a
//! block above its mmap threshold (128 KiB at first) with fresh pages and
//! gives a freed heap top back to the OS, so every such file cost page
//! faults and page zeroing: 12% of a swarm worker's time was system time,
//! 2,200 page faults per seed. Keeping freed memory in the process (both
//! thresholds raised) made a 2-worker swarm of the default scenario a
//! quarter faster (31.5 → 40.0 seeds/s when it went in) for a few MiB of
//! resident memory per worker.

/// Keep large freed blocks in the process; false where that is not possible
/// (not glibc, or glibc refused the values).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() -> bool {
    use std::ffi::c_int;

    // From glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    // glibc's largest mmap threshold on 64-bit hosts (32 MiB).
    const MMAP_THRESHOLD: c_int = 32 << 20;
    const TRIM_THRESHOLD: c_int = 256 << 20;
    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // SAFETY: mallopt only changes malloc parameters; it is called before
    // any worker thread exists, and both values are within glibc's limits.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn glibc_takes_the_thresholds() {
        assert!(super::keep_freed_memory());
    }
}

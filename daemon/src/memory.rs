//! Process-wide memory settings.

/// Caps glibc's malloc arenas at `max`. By default glibc gives busy threads up to eight arenas
/// per core, and each keeps the memory its threads freed; for shopsync's many short-lived
/// blocking threads that was ~35 MiB of peak RSS (`bench-engine 100000`: 193 MiB without a
/// cap, 157 MiB with 2). An operator's `MALLOC_ARENA_MAX` is left to win. Call it first thing
/// in `main`, before any other thread exists.
pub fn limit_malloc_arenas(max: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter, and no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, max);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = max;
}

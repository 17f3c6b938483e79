//! Giving freed memory back to the operating system after a snapshot is built.
//!
//! Building a snapshot reads every feature of a collection (as rows or WKB) and frees those
//! buffers once the snapshot holds its own copies. glibc's allocator keeps such freed memory in
//! its arenas, so the process would carry the peak of the build as resident memory for its whole
//! life; `malloc_trim` hands it back.
#![allow(unsafe_code)]

pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

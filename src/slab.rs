//! A slab: a fixed-capacity byte buffer in an anonymous mapping of its own whose pages
//! the kernel makes present in one call (`MAP_POPULATE`), filled from the front like a
//! `Vec` that never grows. For memory that is filled once and held: a Clonezilla
//! image's decoded runs (foreign/clonezilla/kept.rs) and the records a remote
//! restore's check keeps for its write phase (repo/restore_cache.rs).
//!
//! Why not a `Vec` touched one byte per page (what the slabs were): each first touch
//! is a page fault, and on the bench machine (a Firecracker VM whose freed guest memory
//! goes back to the host) 1.7 GiB of fresh pages cost 1.9-5.2 s of wall time touched
//! page by page against 1.5-1.8 s populated by the kernel in one call per slab, measured
//! side by side (docs/BENCH.md, "Branch czfast"). The populate is best effort: pages it
//! could not make present fault in on first write, as before.

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::num::NonZeroUsize;
use std::ptr::NonNull;

pub struct Slab {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone (like a `Vec<u8>`'s heap block);
// shared references only read it.
unsafe impl Send for Slab {}
unsafe impl Sync for Slab {}

impl Slab {
    /// A new empty slab of `cap` bytes, its pages populated; `None` when `cap` is 0 or
    /// the mapping fails (the caller then keeps no more: the slower path is always right).
    pub fn new(cap: usize) -> Option<Slab> {
        let len = NonZeroUsize::new(cap)?;
        // SAFETY: a new private anonymous mapping at an address the kernel picks: it
        // aliases nothing, and it is unmapped only by `drop`.
        let p = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_POPULATE,
            )
        }
        .ok()?;
        Some(Slab {
            ptr: p.cast(),
            cap,
            len: 0,
        })
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`; the caller checks that it fits (the rest is dropped otherwise).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let n = data.len().min(self.cap - self.len);
        // SAFETY: `len + n <= cap`, inside the mapping; `data` cannot overlap it (the
        // mapping is reachable only through `&mut self`).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(self.len), n);
        }
        self.len += n;
    }

    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The filled bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the mapping were written by
        // `extend_from_slice`; the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn get(&self, r: std::ops::Range<usize>) -> Option<&[u8]> {
        self.as_slice().get(r)
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`cap` are the mapping `new` made, unmapped only here.
        let _ = unsafe { munmap(self.ptr.cast(), self.cap) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_from_the_front_and_never_past_its_capacity() {
        let mut s = Slab::new(10_000).unwrap();
        assert_eq!((s.len(), s.capacity()), (0, 10_000));
        assert!(s.is_empty());
        s.extend_from_slice(&[1u8; 6000]);
        s.extend_from_slice(&[2u8; 6000]);
        assert_eq!(s.len(), 10_000, "the second append is cut at the capacity");
        assert!(s.as_slice()[..6000].iter().all(|&b| b == 1));
        assert!(s.as_slice()[6000..].iter().all(|&b| b == 2));
        s.truncate(100);
        assert_eq!(s.get(0..100).map(<[u8]>::len), Some(100));
        assert!(s.get(0..101).is_none());
        assert!(Slab::new(0).is_none());
    }
}

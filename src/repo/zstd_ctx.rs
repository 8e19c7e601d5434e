//! A zstd compression context reached through `zstd-sys`, for the one setting the
//! `zstd` crate cannot pass: zstd 1.5.7's pre-block splitter level (experimental
//! parameter 20, `ZSTD_c_blockSplitterLevel`). Why that setting is worth an FFI
//! wrapper is in compress.rs; everything else about compression stays with the crate.

use std::ffi::CStr;
use std::ptr::NonNull;
use thiserror::Error;
use zstd_sys::ZSTD_cParameter;

/// What zstd refused; `name` is zstd's own error name (`ZSTD_getErrorName`).
#[derive(Debug, Error)]
pub enum ZstdError {
    #[error("cannot allocate a compression context")]
    NoContext,
    #[error("cannot create a decompression context: {0}")]
    NoDecompressor(#[source] std::io::Error),
    #[error("parameter {param}={value}: {name}")]
    Parameter {
        param: i32,
        value: i32,
        name: &'static str,
    },
    #[error("compressing {len} bytes: {name}")]
    Compress { len: usize, name: &'static str },
}

/// zstd's number for `ZSTD_c_blockSplitterLevel`: 0 lets zstd choose, 1 turns the
/// splitter off, 2 is its cheapest splitter (block borders only), up to 6.
pub const BLOCK_SPLITTER_LEVEL: ZSTD_cParameter = ZSTD_cParameter::ZSTD_c_experimentalParam20;

/// An owned `ZSTD_CCtx`, used by one thread at a time (every call takes `&mut self`).
pub struct Cctx(NonNull<zstd_sys::ZSTD_CCtx>);

// SAFETY: a ZSTD_CCtx holds no thread-local state; `&mut self` on every use keeps it
// to one thread at a time, so moving it to a worker thread is sound.
unsafe impl Send for Cctx {}

/// zstd's result code as a size, or zstd's name for the error it encodes.
fn check(code: usize) -> Result<usize, &'static str> {
    // SAFETY: both functions take any size_t; the name is a static C string, so the
    // `'static` borrow is sound.
    let name: &'static CStr = unsafe {
        if zstd_sys::ZSTD_isError(code) == 0 {
            return Ok(code);
        }
        CStr::from_ptr(zstd_sys::ZSTD_getErrorName(code))
    };
    Err(name.to_str().unwrap_or("unnamed zstd error"))
}

impl Cctx {
    /// A context with `params` set, in order; the first one zstd refuses is the error.
    pub fn new(params: &[(ZSTD_cParameter, i32)]) -> Result<Self, ZstdError> {
        // SAFETY: plain constructor; null means out of memory.
        let raw = unsafe { zstd_sys::ZSTD_createCCtx() };
        let mut c = Cctx(NonNull::new(raw).ok_or(ZstdError::NoContext)?);
        for &(param, value) in params {
            c.set(param, value).map_err(|name| ZstdError::Parameter {
                param: param as i32,
                value,
                name,
            })?;
        }
        Ok(c)
    }

    /// Sets one parameter; the error is zstd's name for why it refused.
    fn set(&mut self, param: ZSTD_cParameter, value: i32) -> Result<(), &'static str> {
        // SAFETY: the context is live and ours; zstd validates param and value.
        check(unsafe { zstd_sys::ZSTD_CCtx_setParameter(self.0.as_ptr(), param, value) }).map(drop)
    }

    /// Compresses `src` as one frame into `dst`, replacing its contents. `dst` needs
    /// the capacity of `compress_bound(src.len())` to be sure to succeed.
    #[cfg(test)]
    pub fn compress_into(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Result<(), ZstdError> {
        dst.clear();
        self.compress_append(src, dst)
    }

    /// Compresses `src` into `dst` after what `dst` holds: the frame follows it (an encrypted
    /// record's nonce goes in front of its frame without moving the frame).
    pub fn compress_append(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Result<(), ZstdError> {
        let kept = dst.len();
        let room = dst.capacity() - kept;
        // SAFETY: zstd writes at most `room` bytes after the `kept` initialised ones
        // (inside dst's allocation) and returns how many (or an error code), so the
        // first `kept + n` bytes are initialised.
        unsafe {
            let n = check(zstd_sys::ZSTD_compress2(
                self.0.as_ptr(),
                dst.as_mut_ptr().add(kept).cast(),
                room,
                src.as_ptr().cast(),
                src.len(),
            ))
            .map_err(|name| ZstdError::Compress {
                len: src.len(),
                name,
            })?;
            dst.set_len(kept + n.min(room));
        }
        Ok(())
    }
}

impl Drop for Cctx {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createCCtx, freed once.
        unsafe {
            zstd_sys::ZSTD_freeCCtx(self.0.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_and_bad_parameters_are_named() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
            .collect();
        let mut c = Cctx::new(&[
            (ZSTD_cParameter::ZSTD_c_compressionLevel, 3),
            (BLOCK_SPLITTER_LEVEL, 2),
        ])
        .unwrap();
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
        c.compress_into(&data, &mut out).unwrap();
        assert!(out.len() < data.len() / 4);
        assert_eq!(zstd::bulk::decompress(&out, data.len()).unwrap(), data);
        // A second frame through the same context starts afresh.
        c.compress_into(&data[..1000], &mut out).unwrap();
        assert_eq!(zstd::bulk::decompress(&out, 1000).unwrap(), &data[..1000]);

        let e = Cctx::new(&[(BLOCK_SPLITTER_LEVEL, 99)]).err().unwrap();
        assert!(
            matches!(
                e,
                ZstdError::Parameter {
                    param: 1017,
                    value: 99,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("1017=99"), "{e}");
        let mut small = Vec::with_capacity(10);
        let e = c.compress_into(&data, &mut small).unwrap_err();
        // zstd's own name for dstSize_tooSmall comes through the static string.
        assert!(
            matches!(e, ZstdError::Compress { len: 200_000, name } if name.contains("too small")),
            "{e}"
        );
    }
}

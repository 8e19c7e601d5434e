//! A device wrapper that misbehaves on purpose.
//!
//! Rescue reading can only be trusted if it is tested against a disk that fails the
//! way dying disks do: EIO on some sectors, sectors that fail a few times and then
//! read, and reads that crawl. `FaultyDevice` injects exactly that on chosen byte
//! ranges, in unit tests and (through `IRONCLONE_FAULTS`) under the real CLI. It also
//! refuses every write and remembers the attempt, so a test can prove that nothing
//! was ever written to a backup source.

use crate::device::{Access, BlockDevice, DeviceError};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// The environment variable the CLI reads to wrap a backup source (test hook).
pub const FAULTS_ENV: &str = "IRONCLONE_FAULTS";

/// The raw OS error a dying disk gives Linux readers.
const EIO: i32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Every read touching the range fails with EIO.
    Eio,
    /// The first `n` reads touching the range fail with EIO, later ones succeed
    /// (a marginal sector that a retry recovers).
    Flaky(u32),
    /// Every read touching the range sleeps this long first.
    Slow(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub offset: u64,
    pub len: u64,
    pub kind: FaultKind,
}

impl Fault {
    fn touches(&self, offset: u64, len: u64) -> bool {
        let end = offset.saturating_add(len);
        len > 0
            && self.len > 0
            && offset < self.offset.saturating_add(self.len)
            && self.offset < end
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FaultSpecError {
    #[error("fault spec item {item:?}: {why} (expected eio:OFF+LEN, flaky:OFF+LEN:N or slow:OFF+LEN:50ms)")]
    Bad { item: String, why: String },
}

/// Parses `eio:1048576+4096,slow:0+65536:50ms,flaky:8192+512:2`.
/// Numbers are decimal or `0x` hex; durations take `us`, `ms` or `s`.
pub fn parse_spec(spec: &str) -> Result<Vec<Fault>, FaultSpecError> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| FaultSpecError::Bad {
            item: item.to_string(),
            why: why.to_string(),
        };
        let mut parts = item.split(':');
        let kind = parts.next().unwrap_or_default();
        let range = parts.next().ok_or_else(|| bad("missing OFF+LEN"))?;
        let (off, len) = range
            .split_once('+')
            .ok_or_else(|| bad("range needs OFF+LEN"))?;
        let offset = parse_num(off).ok_or_else(|| bad("bad offset"))?;
        let len = parse_num(len).ok_or_else(|| bad("bad length"))?;
        if len == 0 || offset.checked_add(len).is_none() {
            return Err(bad("empty or overflowing range"));
        }
        let arg = parts.next();
        if parts.next().is_some() {
            return Err(bad("too many fields"));
        }
        let kind = match (kind, arg) {
            ("eio", None) => FaultKind::Eio,
            ("flaky", Some(n)) => {
                FaultKind::Flaky(n.parse().map_err(|_| bad("bad failure count"))?)
            }
            ("slow", Some(d)) => {
                FaultKind::Slow(parse_duration(d).ok_or_else(|| bad("bad delay"))?)
            }
            _ => return Err(bad("unknown kind or wrong argument count")),
        };
        out.push(Fault { offset, len, kind });
    }
    Ok(out)
}

fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit): (&str, fn(u64) -> Duration) = if let Some(n) = s.strip_suffix("us") {
        (n, Duration::from_micros)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, Duration::from_millis)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, Duration::from_secs)
    } else {
        return None;
    };
    let d = unit(num.parse().ok()?);
    // A typo must not make a test sleep for hours.
    (d <= Duration::from_secs(60)).then_some(d)
}

/// Wraps a device, failing or slowing reads on chosen ranges and refusing all writes.
pub struct FaultyDevice<D> {
    inner: D,
    faults: Vec<Fault>,
    flaky_left: Vec<AtomicU32>,
    writes: Mutex<Vec<(u64, u64)>>,
    reads: AtomicU64,
    failed_reads: AtomicU64,
    /// Every read as (offset, len), in order, when asked for (`with_read_log`).
    read_log: Option<Mutex<Vec<(u64, u64)>>>,
}

impl<D: BlockDevice> FaultyDevice<D> {
    pub fn new(inner: D, faults: Vec<Fault>) -> Self {
        let flaky_left = faults
            .iter()
            .map(|f| match f.kind {
                FaultKind::Flaky(n) => AtomicU32::new(n),
                _ => AtomicU32::new(0),
            })
            .collect();
        FaultyDevice {
            inner,
            faults,
            flaky_left,
            writes: Mutex::new(Vec::new()),
            reads: AtomicU64::new(0),
            failed_reads: AtomicU64::new(0),
            read_log: None,
        }
    }

    /// Also remember every read's (offset, len), so a test can check the order a
    /// reader went through the disk (it grows with the reads: tests only).
    pub fn with_read_log(mut self) -> Self {
        self.read_log = Some(Mutex::new(Vec::new()));
        self
    }

    /// The reads so far as (offset, len), in the order they reached the device;
    /// empty without `with_read_log`.
    pub fn read_log(&self) -> Vec<(u64, u64)> {
        self.read_log.as_ref().map_or_else(Vec::new, |l| {
            l.lock().unwrap_or_else(|e| e.into_inner()).clone()
        })
    }

    pub fn from_spec(inner: D, spec: &str) -> Result<Self, FaultSpecError> {
        Ok(Self::new(inner, parse_spec(spec)?))
    }

    /// Every write that was attempted, as (offset, len). Empty means the device was
    /// never asked to write.
    pub fn write_attempts(&self) -> Vec<(u64, u64)> {
        self.writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many `read_at` calls reached this device, and how many of those failed.
    pub fn read_counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.failed_reads.load(Ordering::Relaxed),
        )
    }

    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    pub fn into_inner(self) -> D {
        self.inner
    }
}

/// Wraps `dev` in a `FaultyDevice` when `IRONCLONE_FAULTS` is set and not empty
/// (the hidden hook end-to-end tests use), otherwise returns it unchanged.
pub fn wrap_from_env(dev: Arc<dyn BlockDevice>) -> Result<Arc<dyn BlockDevice>, FaultSpecError> {
    match std::env::var(FAULTS_ENV) {
        Ok(spec) if !spec.trim().is_empty() => Ok(Arc::new(FaultyDevice::from_spec(dev, &spec)?)),
        _ => Ok(dev),
    }
}

impl<D: BlockDevice> FaultyDevice<D> {
    /// Counts and logs one read and applies the faults it touches; `Err` is the
    /// injected EIO. Cached and direct reads fail alike (the faults model the medium).
    fn inject(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let len = buf.len() as u64;
        if let Some(log) = &self.read_log {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((offset, len));
        }
        let mut fail = false;
        for (f, left) in self.faults.iter().zip(&self.flaky_left) {
            if !f.touches(offset, len) {
                continue;
            }
            match f.kind {
                FaultKind::Slow(d) => std::thread::sleep(d),
                FaultKind::Eio => fail = true,
                FaultKind::Flaky(_) => {
                    let was = left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                    fail |= was.is_ok();
                }
            }
        }
        if fail {
            self.failed_reads.fetch_add(1, Ordering::Relaxed);
            return Err(DeviceError::Io {
                device: self.describe(),
                offset,
                len,
                source: std::io::Error::from_raw_os_error(EIO),
            });
        }
        Ok(())
    }
}

impl<D: BlockDevice> BlockDevice for FaultyDevice<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.inject(offset, buf)?;
        self.inner.read_at(offset, buf)
    }

    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.inject(offset, buf)?;
        self.inner.read_direct_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((offset, buf.len() as u64));
        Err(DeviceError::ReadOnly {
            device: self.describe(),
            offset,
        })
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_sector_size(&self) -> u32 {
        self.inner.logical_sector_size()
    }
    fn physical_sector_size(&self) -> u32 {
        self.inner.physical_sector_size()
    }
    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn access(&self) -> Access {
        Access::ReadOnly
    }
    fn describe(&self) -> String {
        format!("{} (fault-injected)", self.inner.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn spec_parses_and_rejects() {
        let f = parse_spec("eio:1048576+4096, slow:0+65536:50ms,flaky:0x200+512:2").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[0],
            Fault {
                offset: 1 << 20,
                len: 4096,
                kind: FaultKind::Eio
            }
        );
        assert_eq!(f[1].kind, FaultKind::Slow(Duration::from_millis(50)));
        assert_eq!(
            f[2],
            Fault {
                offset: 512,
                len: 512,
                kind: FaultKind::Flaky(2)
            }
        );
        for bad in [
            "eio",
            "eio:5",
            "eio:1+0",
            "slow:0+1",
            "slow:0+1:5h",
            "zap:0+1",
            "eio:0+1:3",
            "slow:0+1:999s",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_spec("").unwrap().is_empty());
    }

    #[test]
    fn eio_only_where_injected_and_flaky_recovers() {
        let data: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
        let d = FaultyDevice::from_spec(
            MemDevice::from_vec(data.clone(), 512),
            "eio:1024+512,flaky:4096+512:2",
        )
        .unwrap();
        let mut b = [0u8; 512];
        d.read_at(512, &mut b).unwrap();
        assert_eq!(&b[..], &data[512..1024]);
        let e = d.read_at(1000, &mut b).unwrap_err();
        assert!(e.is_media_error());
        match e {
            DeviceError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(5)),
            other => panic!("{other}"),
        }
        assert!(d.read_at(4096, &mut b).is_err());
        assert!(d.read_at(4000, &mut b).is_err());
        d.read_at(4096, &mut b).unwrap();
        assert_eq!(&b[..], &data[4096..4608]);
        assert_eq!(d.read_counts(), (5, 3));
    }

    #[test]
    fn writes_refused_and_recorded() {
        let mem = MemDevice::new(4096, 512);
        let d = FaultyDevice::new(mem, vec![]);
        assert!(matches!(
            d.write_at(512, &[1; 10]),
            Err(DeviceError::ReadOnly { .. })
        ));
        assert_eq!(d.write_attempts(), vec![(512, 10)]);
        assert_eq!(d.access(), Access::ReadOnly);
        assert!(d.into_inner().snapshot().iter().all(|&b| b == 0));
    }
}

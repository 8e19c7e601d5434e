//! A device whose bytes are pieces of another: an LVM logical volume read through the
//! PV holding it, the way device-mapper's `linear` and `striped` targets lay it out.
//! Read-only: it exists so filesystem parsers can read an LV inside an image file or
//! a disk without device-mapper, and so their used extents can be mapped back.

use super::{Access, BlockDevice, DeviceError};

/// How one stretch of the mapped device lies on the inner one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Contiguous, from this inner byte offset.
    Linear(u64),
    /// `stripe` bytes on each inner offset in turn, round-robin.
    Striped { stripe: u64, starts: Vec<u64> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Offset of the piece in the mapped device.
    pub start: u64,
    pub len: u64,
    pub layout: Layout,
}

pub struct Mapped<'a> {
    inner: &'a dyn BlockDevice,
    name: String,
    /// Sorted by `start`, contiguous from 0.
    pieces: Vec<Piece>,
    size: u64,
}

impl<'a> Mapped<'a> {
    /// Fails when the pieces do not follow each other from 0, a stripe is 0 bytes or
    /// a piece does not lie inside `inner`.
    pub fn new(
        inner: &'a dyn BlockDevice,
        name: String,
        pieces: Vec<Piece>,
    ) -> Result<Self, DeviceError> {
        let mut size = 0u64;
        let bad = |what: String| DeviceError::Query {
            device: name.clone(),
            what,
        };
        for p in &pieces {
            if p.start != size {
                return Err(bad(format!(
                    "piece at {} does not follow the one ending at {size}",
                    p.start
                )));
            }
            size = size
                .checked_add(p.len)
                .ok_or_else(|| bad("pieces overflow".into()))?;
            match &p.layout {
                Layout::Linear(at) => inner.check_range(*at, p.len)?,
                Layout::Striped { stripe, starts } => {
                    let n = starts.len() as u64;
                    let row = stripe.checked_mul(n).filter(|&r| r > 0);
                    if row.is_none_or(|r| p.len % r != 0) {
                        return Err(bad(format!(
                            "piece at {}: stripes do not divide it",
                            p.start
                        )));
                    }
                    for s in starts {
                        inner.check_range(*s, p.len / n)?;
                    }
                }
            }
        }
        Ok(Mapped {
            inner,
            name,
            pieces,
            size,
        })
    }

    /// The inner ranges holding `[offset, offset + len)`, in order, each as
    /// (inner offset, length).
    pub fn resolve(&self, offset: u64, len: u64) -> Result<Vec<(u64, u64)>, DeviceError> {
        self.check_range(offset, len)?;
        let mut out: Vec<(u64, u64)> = Vec::new();
        let (mut at, end) = (offset, offset + len);
        let mut i = self.pieces.partition_point(|p| p.start + p.len <= at);
        while at < end {
            let Some(p) = self.pieces.get(i) else { break };
            let within = at - p.start;
            let piece_left = p.len - within;
            let (phys, run) = match &p.layout {
                Layout::Linear(base) => (base + within, piece_left),
                Layout::Striped { stripe, starts } => {
                    let chunk = within / stripe;
                    let n = starts.len() as u64;
                    let base = starts.get((chunk % n) as usize).copied().unwrap_or(0);
                    let in_chunk = within % stripe;
                    (base + (chunk / n) * stripe + in_chunk, stripe - in_chunk)
                }
            };
            let run = run.min(end - at);
            match out.last_mut() {
                Some((o, l)) if *o + *l == phys => *l += run,
                _ => out.push((phys, run)),
            }
            at += run;
            if at >= p.start + p.len {
                i += 1;
            }
        }
        Ok(out)
    }
}

impl BlockDevice for Mapped<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let mut done = 0usize;
        for (phys, len) in self.resolve(offset, buf.len() as u64)? {
            let part =
                buf.get_mut(done..done + len as usize)
                    .ok_or_else(|| DeviceError::OutOfRange {
                        device: self.describe(),
                        offset,
                        len,
                        size: self.size,
                    })?;
            self.inner.read_at(phys, part)?;
            done += len as usize;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, _buf: &[u8]) -> Result<(), DeviceError> {
        Err(DeviceError::ReadOnly {
            device: self.describe(),
            offset,
        })
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn logical_sector_size(&self) -> u32 {
        self.inner.logical_sector_size()
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn access(&self) -> Access {
        Access::ReadOnly
    }

    fn describe(&self) -> String {
        format!("{} on {}", self.name, self.inner.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn linear_and_striped_pieces_read_and_resolve() {
        let data: Vec<u8> = (0..64u32).map(|i| i as u8).collect();
        let inner = MemDevice::from_vec(data, 512);
        let pieces = vec![
            Piece {
                start: 0,
                len: 8,
                layout: Layout::Linear(40),
            },
            Piece {
                start: 8,
                len: 16,
                layout: Layout::Striped {
                    stripe: 4,
                    starts: vec![0, 20],
                },
            },
        ];
        let m = Mapped::new(&inner, "lv".into(), pieces).unwrap();
        assert_eq!(m.size(), 24);
        let mut b = vec![0u8; 24];
        m.read_at(0, &mut b).unwrap();
        let want: Vec<u8> = [40..48, 0..4, 20..24, 4..8, 24..28]
            .into_iter()
            .flatten()
            .map(|i| i as u8)
            .collect();
        assert_eq!(b, want);
        assert_eq!(m.resolve(6, 8).unwrap(), vec![(46, 2), (0, 4), (20, 2)]);
        assert!(m.resolve(20, 8).is_err(), "past the end");
        assert!(m.write_at(0, &[1]).is_err());
    }

    #[test]
    fn pieces_that_do_not_fit_are_refused() {
        let inner = MemDevice::new(64, 512);
        let lin = |start, len, at| Piece {
            start,
            len,
            layout: Layout::Linear(at),
        };
        assert!(Mapped::new(&inner, "gap".into(), vec![lin(0, 8, 0), lin(9, 8, 8)]).is_err());
        assert!(Mapped::new(&inner, "outside".into(), vec![lin(0, 8, 60)]).is_err());
        let odd = Piece {
            start: 0,
            len: 10,
            layout: Layout::Striped {
                stripe: 4,
                starts: vec![0, 32],
            },
        };
        assert!(Mapped::new(&inner, "stripes".into(), vec![odd]).is_err());
    }
}

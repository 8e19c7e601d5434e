//! FAT entries and cluster chains. In exFAT the FAT only records chains of
//! fragmented streams (allocation is in the bitmap), but the root directory, the
//! bitmap and the up-case table are always chained through it. A corrupt FAT can
//! point back into a chain, so following one is bounded by a caller-given length.

use super::DecodeError;

/// Bytes per FAT entry.
pub const ENTRY_BYTES: u64 = 4;

const BAD_CLUSTER: u32 = 0xFFFF_FFF7;
const END_OF_CHAIN: u32 = 0xFFFF_FFFF;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatEntry {
    Next(u32),
    EndOfChain,
}

impl FatEntry {
    /// Decodes the entry `value` of `cluster` on a volume of `cluster_count` clusters.
    pub fn decode(cluster: u32, value: u32, cluster_count: u64) -> Result<Self, DecodeError> {
        let bad = |why| DecodeError::FatEntry {
            cluster,
            value,
            why,
        };
        match value {
            END_OF_CHAIN => Ok(FatEntry::EndOfChain),
            BAD_CLUSTER => Err(bad("a chain runs into a bad cluster")),
            0 => Err(bad("a chain runs into a free entry")),
            v if v < 2 || u64::from(v) > cluster_count + 1 => {
                Err(bad("points outside the cluster heap"))
            }
            v => Ok(FatEntry::Next(v)),
        }
    }
}

/// The clusters of the chain that starts at `first`, read through `entry` (the FAT
/// entry of a cluster), at most `max_len` of them: a longer chain, which includes
/// every cyclic one, is an error.
pub fn follow_chain<E: From<DecodeError>>(
    first: u32,
    max_len: u64,
    cluster_count: u64,
    mut entry: impl FnMut(u32) -> Result<u32, E>,
) -> Result<Vec<u32>, E> {
    let mut out = Vec::new();
    let mut c = first;
    loop {
        if out.len() as u64 >= max_len {
            return Err(DecodeError::Chain {
                first,
                steps: out.len() as u64,
                why: "longer than its stream (a cycle?)",
            }
            .into());
        }
        out.push(c);
        match FatEntry::decode(c, entry(c)?, cluster_count)? {
            FatEntry::EndOfChain => return Ok(out),
            FatEntry::Next(n) => c = n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(fat: &[u32], first: u32, max: u64) -> Result<Vec<u32>, DecodeError> {
        follow_chain(first, max, fat.len() as u64 - 2, |c| {
            Ok::<_, DecodeError>(fat[c as usize])
        })
    }

    #[test]
    fn follows_to_the_end_of_chain() {
        let fat = [0xFFFF_FFF8, END_OF_CHAIN, 4, 0, 6, 0, END_OF_CHAIN];
        assert_eq!(follow(&fat, 2, 10).unwrap(), vec![2, 4, 6]);
        assert_eq!(follow(&fat, 6, 1).unwrap(), vec![6]);
    }

    #[test]
    fn cycles_free_and_bad_entries_are_errors() {
        let cyclic = [0, 0, 3, 2, 0];
        assert!(matches!(
            follow(&cyclic, 2, 1000),
            Err(DecodeError::Chain { steps: 1000, .. })
        ));
        let free = [0, 0, 3, 0, 0];
        assert!(matches!(
            follow(&free, 2, 10),
            Err(DecodeError::FatEntry { cluster: 3, .. })
        ));
        let bad = [0, 0, BAD_CLUSTER, 0];
        assert!(follow(&bad, 2, 10).is_err());
        let outside = [0, 0, 9, 0];
        assert!(follow(&outside, 2, 10).is_err());
        let short = [0, 0, 3, END_OF_CHAIN];
        assert!(follow(&short, 2, 1).is_err());
    }
}

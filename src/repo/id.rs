//! Content identifiers. A chunk is named by the blake3 hash of its uncompressed bytes,
//! a pack by the blake3 hash of its headers (pack.rs), so both can be checked by
//! recomputing them and neither can be confused with the other (distinct newtypes).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The 64 hex digits of an id, on the stack: manifests and index files hold one per
/// chunk, millions for a large disk, so serialising them allocates nothing.
fn hex_digits(bytes: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
    out
}

fn to_hex(bytes: &[u8; 32]) -> String {
    String::from_utf8_lossy(&hex_digits(bytes)).into_owned()
}

/// Reads an id from a JSON string without allocating one (see `hex_digits`).
struct IdVisitor;

impl serde::de::Visitor<'_> for IdVisitor {
    type Value = [u8; 32];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("64 hex digits")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<[u8; 32], E> {
        from_hex(s).ok_or_else(|| E::custom(format!("bad hex id {s:?}")))
    }
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *out.get_mut(i)? = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn of(data: &[u8]) -> Self {
                $name(*blake3::hash(data).as_bytes())
            }
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }
            pub fn from_hex(s: &str) -> Option<Self> {
                from_hex(s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..12])
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let hex = hex_digits(&self.0);
                // Hex digits are ASCII, so this cannot fail.
                s.serialize_str(std::str::from_utf8(&hex).unwrap_or_default())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(IdVisitor).map($name)
            }
        }
    };
}

id_type!(
    /// blake3 of a chunk's uncompressed bytes.
    ChunkId
);
id_type!(
    /// blake3 of a pack's headers (version 2: the pack header and every record
    /// header, which carry each chunk's id and CRC); version 1 packs, still read,
    /// are named by the blake3 of the whole file (pack.rs).
    PackId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_garbage() {
        let id = ChunkId::of(b"hello");
        assert_eq!(ChunkId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(ChunkId::from_hex("zz"), None);
        assert_eq!(ChunkId::from_hex(&"g".repeat(64)), None);
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ChunkId>(&j).unwrap(), id);
    }
}

//! Key slots: the master key wrapped under a key derived from a passphrase (Argon2id,
//! its parameters and salt stored in the slot). One JSON file per slot under `keys/`,
//! so adding or removing a passphrase never rewrites data or another slot.

use super::aad::Aad;
use super::error::CryptoError;
use super::{seal, MasterKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const SLOT_VERSION: u32 = 1;
/// Default Argon2id memory: 64 MiB fits the rescue system on a 512 MiB machine beside
/// the backup's own buffers, and still costs an attacker 64 MiB per guess.
pub const DEFAULT_M_KIB: u32 = 64 << 10;
/// Three passes: one unlock costs 0.12 s of CPU at 64 MiB (docs/BENCH.md).
pub const DEFAULT_T: u32 = 3;
/// One lane: the unlock time does not depend on how many cores the rescue box has.
pub const DEFAULT_P: u32 = 1;
/// Bounds on parameters read from a slot, so a damaged or hostile slot cannot make an
/// unlock allocate gigabytes or run for hours.
const MAX_M_KIB: u32 = 4 << 20;
const MAX_T: u32 = 64;
const MAX_P: u32 = 16;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Kdf {
    Argon2id {
        m_kib: u32,
        t: u32,
        p: u32,
        /// 16 random bytes, hex.
        salt: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeySlot {
    pub version: u32,
    pub kdf: Kdf,
    pub created_unix: u64,
    pub host: String,
    pub label: String,
    /// Hex of nonce ‖ encrypted master key ‖ tag; the AAD is every other field
    /// (`aad_of`) and the repository id, so no field can be changed unnoticed.
    pub wrapped: String,
}

/// Argon2id parameters for new slots: the defaults, or `IRONCLONE_KDF=M_KIB,T,P` (tests
/// and slow machines; read only when a slot is created, the slot stores what was used).
pub fn new_params() -> (u32, u32, u32) {
    let d = (DEFAULT_M_KIB, DEFAULT_T, DEFAULT_P);
    let Ok(v) = std::env::var("IRONCLONE_KDF") else {
        return d;
    };
    let n: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    match n[..] {
        [m, t, p] => (m, t, p),
        _ => d,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// The AAD fields of `slot`: its JSON with `wrapped` empty.
fn aad_of(repo_id: &str, slot: &KeySlot) -> Result<Aad, CryptoError> {
    let mut s = slot.clone();
    s.wrapped.clear();
    let fields = serde_json::to_vec(&s).map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(Aad::slot(repo_id, &fields))
}

/// Argon2id parameters this build accepts, as `argon2::Params`.
fn params(m_kib: u32, t: u32, p: u32) -> Result<argon2::Params, CryptoError> {
    if m_kib > MAX_M_KIB || t > MAX_T || p > MAX_P || p == 0 {
        return Err(CryptoError::Kdf(format!(
            "argon2id m={m_kib} KiB t={t} p={p} is outside the accepted bounds"
        )));
    }
    argon2::Params::new(m_kib, t, p, Some(32)).map_err(|e| CryptoError::Kdf(e.to_string()))
}

/// Whether a slot with these parameters can be made: a slot wrapped on another thread
/// (`Repository::init_encrypted_deferred`) is refused before it is started.
pub fn check_params(m_kib: u32, t: u32, p: u32) -> Result<(), CryptoError> {
    params(m_kib, t, p).map(drop)
}

fn derive(kdf: &Kdf, secret: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let Kdf::Argon2id { m_kib, t, p, salt } = kdf;
    let params = params(*m_kib, *t, *p)?;
    let salt = unhex(salt).ok_or_else(|| CryptoError::Kdf("salt is not hex".into()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(secret, &salt, &mut out[..])
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(out)
}

/// A new slot wrapping `master` under `secret`.
pub fn create(
    repo_id: &str,
    master: &[u8; 32],
    secret: &[u8],
    label: &str,
    (m_kib, t, p): (u32, u32, u32),
) -> Result<KeySlot, CryptoError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| CryptoError::Random(e.to_string()))?;
    create_with(repo_id, master, secret, label, (m_kib, t, p), &salt, None)
}

/// `create` with given salt and nonce (known-answer tests) and creation time.
pub(crate) fn create_with(
    repo_id: &str,
    master: &[u8; 32],
    secret: &[u8],
    label: &str,
    (m_kib, t, p): (u32, u32, u32),
    salt: &[u8; 16],
    fixed: Option<(&[u8; 24], u64, &str)>,
) -> Result<KeySlot, CryptoError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let host = crate::hostname::hostname().unwrap_or_default();
    let mut slot = KeySlot {
        version: SLOT_VERSION,
        kdf: Kdf::Argon2id {
            m_kib,
            t,
            p,
            salt: hex(salt),
        },
        created_unix: fixed.map_or(now, |f| f.1),
        host: fixed.map_or(host, |f| f.2.to_string()),
        label: label.to_string(),
        wrapped: String::new(),
    };
    let wrap_key = derive(&slot.kdf, secret)?;
    let aad = aad_of(repo_id, &slot)?;
    let sealed = seal::seal(&wrap_key, &aad, master, fixed.map(|f| f.0))?;
    slot.wrapped = hex(&sealed);
    Ok(slot)
}

/// Parses a slot file's bytes (`slot_id` names it in errors).
pub fn parse(slot_id: &str, bytes: &[u8]) -> Result<KeySlot, CryptoError> {
    let bad = |what: String| CryptoError::BadSlot {
        slot: slot_id.to_string(),
        what,
    };
    let s: KeySlot = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if s.version != SLOT_VERSION {
        return Err(bad(format!("slot version {}", s.version)));
    }
    Ok(s)
}

/// The master key if `secret` opens `slot`; `CryptoError::Auth` for a wrong secret
/// or an altered slot (the two cannot be told apart, by design of the AEAD).
pub fn unwrap(repo_id: &str, slot: &KeySlot, secret: &[u8]) -> Result<MasterKey, CryptoError> {
    let sealed = unhex(&slot.wrapped).ok_or(CryptoError::Auth)?;
    let wrap_key = derive(&slot.kdf, secret)?;
    let aad = aad_of(repo_id, slot)?;
    let plain = Zeroizing::new(seal::open(&wrap_key, &aad, &sealed)?);
    let mut m = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(CryptoError::Auth);
    }
    m.copy_from_slice(&plain);
    Ok(m)
}

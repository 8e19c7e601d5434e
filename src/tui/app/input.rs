//! Key and text-input helpers shared by the screens' handlers: line editing,
//! size parsing ("40G", "max"), image-name checks.

use super::*;

pub(super) fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// A one-line text input: plain text, or a password that never prints itself.
pub(super) trait LineInput {
    fn char_len(&self) -> usize;
    /// Characters the input takes: names, sizes and credentials fit in 64; a typed
    /// location (PathField) takes more.
    fn max_chars(&self) -> usize {
        64
    }
    fn push(&mut self, c: char);
    fn pop(&mut self);
}

impl LineInput for String {
    fn char_len(&self) -> usize {
        self.as_str().chars().count()
    }
    fn push(&mut self, c: char) {
        String::push(self, c)
    }
    fn pop(&mut self) {
        String::pop(self);
    }
}

impl LineInput for crate::share::Password {
    fn char_len(&self) -> usize {
        self.char_count()
    }
    fn push(&mut self, c: char) {
        crate::share::Password::push(self, c)
    }
    fn pop(&mut self) {
        crate::share::Password::pop(self)
    }
}

/// Applies an editing key to a one-line text input; true when the key was used.
pub(super) fn edit(input: &mut impl LineInput, k: &KeyEvent) -> bool {
    match k.code {
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            if input.char_len() < input.max_chars() {
                input.push(c);
            }
            true
        }
        KeyCode::Backspace => {
            input.pop();
            true
        }
        _ => false,
    }
}

/// "40G", "512M", "1.5T", "max": sizes typed in the plan table (binary units).
pub fn parse_size(s: &str) -> Option<SizeChoice> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("max") {
        return Some(SizeChoice::Max);
    }
    let upper = s.to_ascii_uppercase();
    let t = upper.trim_end_matches("IB").trim_end_matches('B');
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        'T' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    if !(v.is_finite() && v > 0.0) || v * mult as f64 > 1e18 {
        return None;
    }
    Some(SizeChoice::Bytes((v * mult as f64) as u64))
}

/// Image names end up as directory names: keep them to a safe alphabet.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Whether partition `part` (/dev/sdb1, /dev/nvme0n1p2) belongs to disk `disk`.
pub fn on_disk(part: &str, disk: &str) -> bool {
    match part.strip_prefix(disk) {
        Some(rest) => {
            let rest = rest.strip_prefix('p').unwrap_or(rest);
            rest.is_empty() || rest.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('.')
}

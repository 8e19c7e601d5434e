//! The kernel (mountinfo: `\040`) and udev (`\x20`) escape bytes in names the same
//! way, a marker then a fixed number of digits; only marker and radix differ.

/// Decodes `prefix` + `width` digits of `radix` into the byte they name; anything
/// malformed (wrong digits, too short, over 255) is kept as written.
pub fn decode(s: &str, prefix: &[u8], width: usize, radix: u32) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digits_at = i + prefix.len();
        if b.get(i..digits_at) == Some(prefix) {
            if let Some(v) = b
                .get(digits_at..digits_at + width)
                .filter(|d| d.iter().all(|&c| char::from(c).is_digit(radix)))
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, radix).ok())
            {
                out.push(v);
                i = digits_at + width;
                continue;
            }
        }
        out.extend(b.get(i));
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

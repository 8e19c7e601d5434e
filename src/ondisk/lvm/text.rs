//! lvm2's metadata text: `name = value` and `name { ... }` sections, values being
//! strings, integers or `[ ... ]` lists, `#` comments. Parsed into a tree that the VG
//! decoder walks; nesting is limited so crafted text cannot exhaust the stack.
//! `Section::emit` writes a tree back in the same syntax (a restore that resizes a PV
//! edits the VG's own text and hands it to `vgcfgrestore`), so the text is read and
//! written in this one place.

use super::error::LvmError;

/// lvm2 nests VG → physical_volumes/logical_volumes → LV → segment: five levels.
const MAX_DEPTH: usize = 16;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    /// A number with a fraction (lvm2 writes none in VG metadata; kept, not used).
    Float(f64),
    List(Vec<Value>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Value(Value),
    Section(Section),
}

/// A section's items in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    pub items: Vec<(String, Item)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key) {
            Some(Item::Section(s)) => Some(s),
            _ => None,
        }
    }
    pub fn value(&self, key: &str) -> Option<&Value> {
        match self.get(key) {
            Some(Item::Value(v)) => Some(v),
            _ => None,
        }
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.value(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.value(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
    pub fn section_mut(&mut self, key: &str) -> Option<&mut Section> {
        self.items.iter_mut().find_map(|(k, v)| match v {
            Item::Section(s) if k == key => Some(s),
            _ => None,
        })
    }
    /// Sets `key` to `value`, replacing its first occurrence or appending it.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.items.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = Item::Value(value),
            None => self.items.push((key.to_string(), Item::Value(value))),
        }
    }
    /// The sub-sections, in order, to change in place.
    pub fn sections_mut(&mut self) -> impl Iterator<Item = (&str, &mut Section)> {
        self.items.iter_mut().filter_map(|(k, v)| match v {
            Item::Section(s) => Some((k.as_str(), s)),
            Item::Value(_) => None,
        })
    }
    /// The tree in lvm2's syntax, tab-indented as lvm2 writes it.
    pub fn emit(&self) -> String {
        let mut out = String::new();
        self.emit_into(&mut out, 0);
        out
    }
    fn emit_into(&self, out: &mut String, depth: usize) {
        let indent = "\t".repeat(depth);
        for (k, item) in &self.items {
            match item {
                Item::Value(v) => {
                    out.push_str(&format!("{indent}{k} = "));
                    emit_value(v, out);
                    out.push('\n');
                }
                Item::Section(s) => {
                    out.push_str(&format!("{indent}{k} {{\n"));
                    s.emit_into(out, depth + 1);
                    out.push_str(&format!("{indent}}}\n"));
                }
            }
        }
    }
    /// The sub-sections, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.items.iter().filter_map(|(k, v)| match v {
            Item::Section(s) => Some((k.as_str(), s)),
            Item::Value(_) => None,
        })
    }
}

fn emit_value(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        Value::Int(i) => out.push_str(&i.to_string()),
        // Debug keeps a '.' or an exponent, so it reads back as a float, not an integer.
        Value::Float(f) => out.push_str(&format!("{f:?}")),
        Value::List(l) => {
            out.push('[');
            for (n, x) in l.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                emit_value(x, out);
            }
            out.push(']');
        }
    }
}

pub fn parse(text: &str) -> Result<Section, LvmError> {
    let mut p = Parser {
        b: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let top = p.items(0)?;
    p.skip_blank();
    if p.pos < p.b.len() {
        return Err(p.err("unexpected '}'"));
    }
    Ok(top)
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> LvmError {
        LvmError::Syntax {
            line: self.line,
            what: what.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => self.line += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                    continue;
                }
                c if c.is_ascii_whitespace() => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    /// Items up to a closing brace (not consumed) or the end.
    fn items(&mut self, depth: usize) -> Result<Section, LvmError> {
        if depth > MAX_DEPTH {
            return Err(self.err("sections nested too deep"));
        }
        let mut s = Section::default();
        loop {
            self.skip_blank();
            match self.peek() {
                None | Some(b'}') => return Ok(s),
                _ => {}
            }
            let key = self.ident()?;
            self.skip_blank();
            match self.peek() {
                Some(b'=') => {
                    self.pos += 1;
                    let v = self.value(depth)?;
                    s.items.push((key, Item::Value(v)));
                }
                Some(b'{') => {
                    self.pos += 1;
                    let inner = self.items(depth + 1)?;
                    if self.peek() != Some(b'}') {
                        return Err(self.err(&format!("section {key} is not closed")));
                    }
                    self.pos += 1;
                    s.items.push((key, Item::Section(inner)));
                }
                _ => return Err(self.err(&format!("expected '=' or '{{' after {key}"))),
            }
        }
    }

    fn ident(&mut self) -> Result<String, LvmError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_-.+".contains(&c))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a name"));
        }
        Ok(String::from_utf8_lossy(self.b.get(start..self.pos).unwrap_or(&[])).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Value, LvmError> {
        self.skip_blank();
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                if depth > MAX_DEPTH {
                    return Err(self.err("lists nested too deep"));
                }
                self.pos += 1;
                let mut list = Vec::new();
                loop {
                    self.skip_blank();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(Value::List(list));
                    }
                    list.push(self.value(depth + 1)?);
                    self.skip_blank();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {}
                        _ => return Err(self.err("expected ',' or ']' in a list")),
                    }
                }
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn string(&mut self) -> Result<String, LvmError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("string not closed")),
                Some(b'"') => {
                    self.pos += 1;
                    return String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("string not closed"))?;
                    out.push(c);
                }
                Some(c) => {
                    if c == b'\n' {
                        self.line += 1;
                    }
                    out.push(c);
                }
            }
            self.pos += 1;
        }
    }

    fn number(&mut self) -> Result<Value, LvmError> {
        let start = self.pos;
        self.pos += 1;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'-')
        {
            self.pos += 1;
        }
        let s = std::str::from_utf8(self.b.get(start..self.pos).unwrap_or(&[])).unwrap_or("");
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        // lvm2 writes no infinities; one would not survive being written back.
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Float)
            .ok_or_else(|| self.err(&format!("bad number {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lvm2s_own_text() {
        let t = "vg0 {\n id = \"abc\" # comment\n seqno = 3\n status = [\"READ\", \"WRITE\"]\n\
                 logical_volumes {\n root {\n stripes = [\n\"pv0\", 6\n]\n}\n}\n}\n\
                 contents = \"Text Format Volume Group\"\nversion = 1\n";
        let s = parse(t).unwrap();
        let vg = s.section("vg0").unwrap();
        assert_eq!(vg.str("id"), Some("abc"));
        assert_eq!(vg.int("seqno"), Some(3));
        let root = vg
            .section("logical_volumes")
            .unwrap()
            .section("root")
            .unwrap();
        assert_eq!(
            root.value("stripes"),
            Some(&Value::List(vec![Value::Str("pv0".into()), Value::Int(6)]))
        );
        assert_eq!(s.int("version"), Some(1));
        assert_eq!(
            parse(&s.emit()).unwrap(),
            s,
            "emit then parse gives the same tree"
        );
    }

    #[test]
    fn emit_escapes_quotes() {
        let mut s = Section::default();
        s.set("a", Value::Str("say \"hi\" \\o/".into()));
        s.set(
            "n",
            Value::List(vec![Value::Int(-3), Value::Str("x".into())]),
        );
        assert_eq!(parse(&s.emit()).unwrap(), s);
    }

    #[test]
    fn garbage_is_an_error_with_its_line() {
        for (t, line) in [
            ("a = 1\nb {\n", 3),
            ("a = \"open\n\n", 3),
            ("a = [1 2]", 1),
            ("}", 1),
            ("x\n= =", 2),
        ] {
            match parse(t) {
                Err(LvmError::Syntax { line: l, .. }) => assert_eq!(l, line, "{t:?}"),
                other => panic!("{t:?}: {other:?}"),
            }
        }
        let deep = "a {".repeat(100);
        assert!(parse(&deep).is_err());
        let deep_list = format!("a = {}", "[".repeat(100_000));
        assert!(parse(&deep_list).is_err());
    }
}

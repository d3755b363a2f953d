//! Just enough of CPython's marshal format (version 2 and later, read by every Python
//! dpy supports) to write the stdlib zip's directory as zipimport keeps it: a dict of
//! strings, ints and tuples, loaded by the hook with one `marshal.loads`.

/// A value marshal can write.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    /// Keys in the order given.
    Dict(Vec<(Value, Value)>),
}

const TYPE_NULL: u8 = b'0';
const TYPE_NONE: u8 = b'N';
const TYPE_INT: u8 = b'i';
const TYPE_LONG: u8 = b'l';
const TYPE_UNICODE: u8 = b'u';
const TYPE_SHORT_ASCII: u8 = b'z';
const TYPE_SMALL_TUPLE: u8 = b')';
const TYPE_TUPLE: u8 = b'(';
const TYPE_DICT: u8 = b'{';

/// `value` as `marshal.dumps` would load it back.
pub fn dumps(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, value);
    out
}

fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::None => out.push(TYPE_NONE),
        Value::Int(n) if i32::try_from(*n).is_ok() => {
            out.push(TYPE_INT);
            out.extend_from_slice(&(*n as i32).to_le_bytes());
        }
        Value::Int(n) => {
            // Base 2**15 digits, least significant first; the count carries the sign.
            let mut magnitude = n.unsigned_abs();
            let mut digits = Vec::new();
            while magnitude > 0 {
                digits.push((magnitude & 0x7fff) as u16);
                magnitude >>= 15;
            }
            let count = digits.len() as i32;
            out.push(TYPE_LONG);
            out.extend_from_slice(&(if *n < 0 { -count } else { count }).to_le_bytes());
            for digit in digits {
                out.extend_from_slice(&digit.to_le_bytes());
            }
        }
        Value::Str(s) if s.is_ascii() && s.len() < 256 => {
            out.push(TYPE_SHORT_ASCII);
            out.push(s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Str(s) => {
            out.push(TYPE_UNICODE);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Tuple(items) if items.len() < 256 => {
            out.push(TYPE_SMALL_TUPLE);
            out.push(items.len() as u8);
            items.iter().for_each(|item| write(out, item));
        }
        Value::Tuple(items) => {
            out.push(TYPE_TUPLE);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            items.iter().for_each(|item| write(out, item));
        }
        Value::Dict(pairs) => {
            out.push(TYPE_DICT);
            for (key, value) in pairs {
                write(out, key);
                write(out, value);
            }
            out.push(TYPE_NULL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's Python loads what was written and prints its repr: the same table of
    /// cases in both languages.
    #[test]
    fn python_loads_what_is_written() {
        let cases = [
            (Value::None, "None"),
            (Value::Int(0), "0"),
            (Value::Int(-5), "-5"),
            (Value::Int(2_147_483_647), "2147483647"),
            (Value::Int(4_294_967_295), "4294967295"),
            (Value::Int(-4_294_967_296), "-4294967296"),
            (Value::Int(1 << 45), "35184372088832"),
            (Value::Str("json/decoder.pyc".into()), "'json/decoder.pyc'"),
            (Value::Str("é".repeat(3)), "'ééé'"),
            (
                Value::Str("x".repeat(300)),
                &format!("'{}'", "x".repeat(300)),
            ),
            (
                Value::Tuple(vec![Value::Str("a".into()), Value::Int(8)]),
                "('a', 8)",
            ),
            (
                Value::Dict(vec![
                    (Value::Str("k".into()), Value::Tuple(vec![])),
                    (Value::Str("n".into()), Value::Int(3_000_000_000)),
                    (Value::Str("d/".into()), Value::None),
                ]),
                "{'k': (), 'n': 3000000000, 'd/': None}",
            ),
        ];
        for (value, repr) in cases {
            let hex: String = dumps(&value).iter().map(|b| format!("{b:02x}")).collect();
            let out = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import marshal, sys; print(repr(marshal.loads(bytes.fromhex(sys.argv[1]))))",
                    &hex,
                ])
                .output()
                .expect("python3 runs");
            assert!(out.status.success(), "{value:?}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                repr,
                "{value:?}"
            );
        }
    }
}

//! OPA's canonical JSON form, over which structured bundle files are hashed.
//!
//! Hand-written because OPA defines its own form (Go's `bundle/hash.go`), not RFC 8785:
//! object keys sorted bytewise and recursively, no whitespace, number literals kept exactly as
//! written (Go decodes them as `json.Number`), and strings escaped the way Go's
//! `encoding/json` does with HTML escaping off, which differs from serde_json for U+2028
//! and U+2029. Matching it byte for byte is what lets bundles signed by `opa build` verify
//! here and ours verify in OPA.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// Returns the canonical form of the JSON document in `bytes`.
pub(crate) fn canonical_json(bytes: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let raw: &RawValue = serde_json::from_slice(bytes)?;
    let mut out = Vec::with_capacity(bytes.len());
    write_value(raw, &mut out)?;
    Ok(out)
}

fn write_value(raw: &RawValue, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => {
            // Go decodes objects into a map: a repeated key keeps its last value, as here.
            let members: BTreeMap<String, &RawValue> = serde_json::from_str(text)?;
            out.push(b'{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(value, out)?;
            }
            out.push(b'}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Some(b'"') => {
            let s: String = serde_json::from_str(text)?;
            write_string(&s, out);
        }
        // Numbers, true, false, null: the literal as written (serde_json has validated it).
        _ => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

/// Writes `s` as a JSON string escaped like Go's encoder with `SetEscapeHTML(false)`.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut utf8 = [0u8; 4];
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c if (c as u32) < 0x20 => {
                let b = c as usize;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[b >> 4]);
                out.push(HEX[b & 0xf]);
            }
            c => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::canonical_json;

    fn canon(s: &str) -> String {
        String::from_utf8(canonical_json(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        assert_eq!(
            canon(r#" { "b": [ {"z":1, "a":2} ], "a" : null } "#),
            r#"{"a":null,"b":[{"a":2,"z":1}]}"#
        );
    }

    #[test]
    fn keeps_number_literals_as_written() {
        assert_eq!(
            canon(r#"{"x": 1.50, "y": 1e3, "z": -0}"#),
            r#"{"x":1.50,"y":1e3,"z":-0}"#
        );
    }

    #[test]
    fn escapes_strings_like_go() {
        assert_eq!(
            canon(r#"["<&>", "\u2028", "\u0001\b\f\n", "é\"\\/"]"#),
            "[\"<&>\",\"\\u2028\",\"\\u0001\\b\\f\\n\",\"é\\\"\\\\/\"]"
        );
    }

    #[test]
    fn last_duplicate_key_wins() {
        assert_eq!(canon(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(canonical_json(b"{\"a\":").is_err());
    }
}

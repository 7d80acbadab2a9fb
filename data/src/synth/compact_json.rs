//! Compact pretty JSON for the vendored calibration files (`step_tokens.json`,
//! `math500_keys.json`): lists of numbers on wrapped lines, flat records on one line each.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{DataError, Result};

/// Write `value` atomically as [`compact_json`], so a rebuilt calibration file stays small and
/// diffable.
pub fn write_compact_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let v = serde_json::to_value(value).map_err(|e| DataError::file(path, e.to_string()))?;
    crate::io::write_text_atomic(path, &compact_json(&v))
}

/// Pretty JSON that keeps lists of numbers on wrapped lines and flat records on one line each,
/// so vendored calibration files stay small and diffable.
pub fn compact_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, 0);
    out.push('\n');
    out
}

fn is_scalar(v: &Value) -> bool {
    !v.is_array() && !v.is_object()
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

fn write_json(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            write_block(out, m.iter(), indent, ['{', '}'], |out, (k, x)| {
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_json(out, x, indent + 2);
            });
        }
        Value::Array(a) if !a.is_empty() && a.iter().all(is_scalar) => {
            out.push_str("[\n");
            let mut line = pad(indent + 2);
            for (i, x) in a.iter().enumerate() {
                let item = x.to_string();
                if line.len() + item.len() > 100 && !line.trim().is_empty() {
                    out.push_str(line.trim_end());
                    out.push('\n');
                    line = pad(indent + 2);
                }
                line.push_str(&item);
                if i + 1 < a.len() {
                    line.push_str(", ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Array(a) if !a.is_empty() => {
            let flat = a
                .iter()
                .all(|x| x.as_object().is_some_and(|m| m.values().all(is_scalar)));
            write_block(out, a.iter(), indent, ['[', ']'], |out, x| {
                if flat {
                    out.push_str(&x.to_string());
                } else {
                    write_json(out, x, indent + 2);
                }
            });
        }
        _ => out.push_str(&v.to_string()),
    }
}

/// `brackets[0]`, then one item per line (indented, comma-separated) written by `item`, then
/// `brackets[1]` at `indent`.
fn write_block<T>(
    out: &mut String,
    items: impl ExactSizeIterator<Item = T>,
    indent: usize,
    brackets: [char; 2],
    mut item: impl FnMut(&mut String, T),
) {
    let n = items.len();
    out.push(brackets[0]);
    out.push('\n');
    for (i, x) in items.enumerate() {
        out.push_str(&pad(indent + 2));
        item(out, x);
        if i + 1 < n {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&pad(indent));
    out.push(brackets[1]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_round_trips() {
        let v = serde_json::json!({"a": [1, 2, 3], "b": [{"x": 1}, {"x": 2}], "c": {"d": "e"}});
        let s = compact_json(&v);
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
        assert!(s.contains("{\"x\":1}"));
    }

    #[test]
    fn layout_wraps_number_lists_and_keeps_flat_records_on_one_line() {
        let v = serde_json::json!({"a": [1, 2], "b": [{"x": 1}, {"x": 2}], "c": {"d": "e"}});
        let want = concat!(
            "{\n",
            "  \"a\": [\n    1, 2\n  ],\n",
            "  \"b\": [\n    {\"x\":1},\n    {\"x\":2}\n  ],\n",
            "  \"c\": {\n    \"d\": \"e\"\n  }\n",
            "}\n"
        );
        assert_eq!(compact_json(&v), want);
        let long: Vec<u32> = (0..40).map(|i| 1000 + i).collect();
        let s = compact_json(&serde_json::json!(long));
        assert!(s.lines().all(|l| l.len() <= 100), "{s}");
        assert!(s.lines().count() > 3, "{s}");
    }
}

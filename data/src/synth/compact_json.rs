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

fn write_json(out: &mut String, v: &Value, indent: usize) {
    let pad = |n: usize| " ".repeat(n);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str("{\n");
            for (i, (k, x)) in m.iter().enumerate() {
                out.push_str(&pad(indent + 2));
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_json(out, x, indent + 2);
                if i + 1 < m.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(indent));
            out.push('}');
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
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad(indent + 2));
                if flat {
                    out.push_str(&x.to_string());
                } else {
                    write_json(out, x, indent + 2);
                }
                if i + 1 < a.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        _ => out.push_str(&v.to_string()),
    }
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
}

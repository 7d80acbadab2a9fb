//! A minimal safetensors writer and validating reader for f32 tensors.
//!
//! Written by hand rather than through burn's `safetensors` feature: the export needs PyTorch
//! layout (transposed Linear weights) and names, which [`PolicyWeights::named_params`] already
//! gives, and flipping a burn feature would rebuild every burn crate for ≈ 60 lines of format.
//!
//! Format (<https://huggingface.co/docs/safetensors>): `u64` little-endian header length `N`,
//! `N` bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`
//! (padded with spaces to a multiple of 8), then the raw little-endian data; offsets are
//! relative to the start of the data and must tile it exactly.
//!
//! [`PolicyWeights::named_params`]: crate::agg::AggNet::named_params

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// One tensor read back: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct F32Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Serialise `tensors` (name, shape, row-major values; written in this order) with string
/// `metadata`. Fails if a shape does not match its value count.
pub fn serialize(
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, String> {
    let mut header = Map::new();
    header.insert("__metadata__".into(), json!(metadata));
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        if shape.iter().product::<usize>() != data.len() {
            return Err(format!(
                "tensor {name}: shape {shape:?} does not hold {} values",
                data.len()
            ));
        }
        let end = offset + 4 * data.len();
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_string(&Value::Object(header)).map_err(|e| e.to_string())?;
    while !(8 + text.len()).is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + offset);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    for (_, _, data) in tensors {
        for v in data.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Parse and validate a safetensors file holding only f32 tensors: header bounds, dtype, shape
/// vs byte length, and offsets that tile the data region with no gap or overlap. Returns the
/// tensors by name and the metadata.
#[allow(clippy::type_complexity)]
pub fn deserialize(
    bytes: &[u8],
) -> Result<(BTreeMap<String, F32Tensor>, BTreeMap<String, String>), String> {
    let n_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("file shorter than the 8-byte header length")?;
    let n = u64::from_le_bytes(n_bytes);
    let data_start = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| format!("header length {n} exceeds the file ({} bytes)", bytes.len()))?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| format!("header is not a JSON object: {e}"))?;
    let data = &bytes[data_start..];
    let mut metadata = BTreeMap::new();
    let mut spans = Vec::new();
    let mut tensors = BTreeMap::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            let m = entry.as_object().ok_or("__metadata__ is not an object")?;
            for (k, v) in m {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("metadata {k} is not a string"))?;
                metadata.insert(k.clone(), v.to_string());
            }
            continue;
        }
        let (tensor, span) = tensor_entry(&name, &entry, data)?;
        spans.push(span);
        tensors.insert(name, tensor);
    }
    check_tiling(spans, data.len())?;
    Ok((tensors, metadata))
}

/// One header entry: dtype F32, a shape whose byte size matches its offsets, offsets inside the
/// data region. Returns the tensor and its byte span.
fn tensor_entry(
    name: &str,
    entry: &Value,
    data: &[u8],
) -> Result<(F32Tensor, (usize, usize)), String> {
    let dtype = entry.get("dtype").and_then(Value::as_str);
    if dtype != Some("F32") {
        return Err(format!("tensor {name}: dtype {dtype:?}, expected F32"));
    }
    let shape: Vec<usize> = entry
        .get("shape")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .ok_or_else(|| format!("tensor {name}: missing or invalid shape"))?;
    let offs: [usize; 2] = entry
        .get("data_offsets")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .ok_or_else(|| format!("tensor {name}: missing or invalid data_offsets"))?;
    let [b, e] = offs;
    if b > e || e > data.len() {
        return Err(format!(
            "tensor {name}: data_offsets {offs:?} outside the {}-byte data",
            data.len()
        ));
    }
    let bytes = (shape.iter())
        .try_fold(4usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("tensor {name}: shape {shape:?} overflows"))?;
    if e - b != bytes {
        return Err(format!(
            "tensor {name}: shape {shape:?} needs {bytes} bytes, offsets give {}",
            e - b
        ));
    }
    let values = data[b..e]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((
        F32Tensor {
            shape,
            data: values,
        },
        (b, e),
    ))
}

/// The tensors' byte spans must tile the data region exactly: no gap, overlap or tail.
fn check_tiling(mut spans: Vec<(usize, usize)>, len: usize) -> Result<(), String> {
    spans.sort_unstable();
    let mut pos = 0;
    for (b, e) in spans {
        if b != pos {
            return Err(format!(
                "tensor data does not tile the file (gap or overlap at byte {pos})"
            ));
        }
        pos = e;
    }
    if pos != len {
        return Err(format!(
            "{} trailing bytes after the last tensor",
            len - pos
        ));
    }
    Ok(())
}

/// Parse `bytes` and hand a network builder its parameters through `build(get)`: `get(name,
/// shape)` takes the tensor `name`, checking its shape and that every value is finite; a tensor
/// left over after the build is an error. Every exported network is rebuilt this way.
pub fn rebuild<N>(
    bytes: &[u8],
    build: impl FnOnce(&mut dyn FnMut(&str, &[usize]) -> Result<Vec<f32>, String>) -> Result<N, String>,
) -> Result<N, String> {
    let (mut tensors, _) = deserialize(bytes)?;
    let mut get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
        let t = tensors
            .remove(name)
            .ok_or_else(|| format!("tensor {name} missing"))?;
        if t.shape != shape {
            return Err(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                t.shape
            ));
        }
        if let Some(v) = t.data.iter().find(|v| !v.is_finite()) {
            return Err(format!("tensor {name} holds a non-finite value {v}"));
        }
        Ok(t.data)
    };
    let net = build(&mut get)?;
    if let Some(extra) = tensors.keys().next() {
        return Err(format!("unexpected tensor {extra}"));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let a = [1.0f32, -2.5, 3.25, 0.0, 7.0, 8.5];
        let b = [0.125f32];
        let t = vec![
            ("a.weight".to_string(), vec![2, 3], &a[..]),
            ("a.bias".to_string(), vec![1], &b[..]),
        ];
        let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let bytes = serialize(&t, &meta).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + header_len) % 8, 0);
        let (got, m) = deserialize(&bytes).unwrap();
        assert_eq!(m, meta);
        assert_eq!(got["a.weight"].shape, vec![2, 3]);
        assert_eq!(got["a.weight"].data, a.to_vec());
        assert_eq!(got["a.bias"].data, b.to_vec());

        let err = deserialize(&bytes[..bytes.len() - 4]).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        let mut extra = bytes.clone();
        extra.extend_from_slice(&[0; 4]);
        assert!(deserialize(&extra).unwrap_err().contains("trailing"));
        assert!(deserialize(&bytes[..5]).is_err());
        let bad = serialize(&[("x".into(), vec![4], &b[..])], &meta).unwrap_err();
        assert!(bad.contains("shape"), "{bad}");
    }
}

//! Reading `policy.onnx` back: a protobuf decoder and an interpreter of exactly the ops
//! `trim export` writes (`Gemm` with transB = 1, `LayerNormalization` over the last axis, `Tanh`,
//! `Softmax`). Loading an export runs the graph on the parity fixture, so the *bytes* of the
//! ONNX file are checked to compute the policy, independent of how they were produced
//! (onnxruntime is checked from Python). Damaged or foreign graphs are errors, never panics.

use std::collections::BTreeMap;

use trim_env::AGG_DIM;

/// Opset of the default domain (LayerNormalization needs ≥ 17).
pub const OPSET: u64 = 17;
/// ONNX IR version written (IR 8 goes with opset 17).
pub const IR_VERSION: u64 = 8;
/// `TensorProto` data type FLOAT.
pub const FLOAT: i64 = 1;

/// One decoded protobuf field value.
enum Field<'a> {
    Varint(u64),
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

/// Decode one protobuf message into (field number, value) pairs.
fn decode(mut b: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    fn varint(b: &mut &[u8]) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Field::Varint(varint(&mut b)?),
            1 => {
                b = b.get(8..).ok_or("truncated fixed64")?;
                continue;
            }
            2 => {
                let n = usize::try_from(varint(&mut b)?).map_err(|e| e.to_string())?;
                let (v, rest) = (b.get(..n).ok_or("truncated field")?, &b[n..]);
                b = rest;
                Field::Bytes(v)
            }
            5 => {
                let v: [u8; 4] = b
                    .get(..4)
                    .and_then(|v| v.try_into().ok())
                    .ok_or("truncated fixed32")?;
                b = &b[4..];
                Field::Fixed32(v)
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        out.push((field, value));
    }
    Ok(out)
}

fn text(f: &Field) -> Result<String, String> {
    match f {
        Field::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|e| e.to_string()),
        _ => Err("expected a string".into()),
    }
}

fn bytes<'a>(f: &Field<'a>) -> Result<&'a [u8], String> {
    match f {
        Field::Bytes(b) => Ok(b),
        _ => Err("expected a message".into()),
    }
}

/// A row-major tensor of the evaluator: `shape` and values.
pub type Value = (Vec<usize>, Vec<f32>);

/// One graph node as decoded.
struct NodeSpec {
    op: String,
    ins: Vec<String>,
    outs: Vec<String>,
    ints: Vec<(String, i64)>,
    floats: Vec<(String, f32)>,
}

impl NodeSpec {
    fn int(&self, k: &str, default: i64) -> i64 {
        self.ints
            .iter()
            .find(|(n, _)| n == k)
            .map_or(default, |x| x.1)
    }
    fn float(&self, k: &str, default: f32) -> f32 {
        self.floats
            .iter()
            .find(|(n, _)| n == k)
            .map_or(default, |x| x.1)
    }
}

/// The decoded graph: initializers, the one input, outputs and nodes in order.
struct Graph {
    env: BTreeMap<String, Value>,
    input: String,
    outputs: Vec<String>,
    nodes: Vec<NodeSpec>,
}

/// Evaluate an ONNX model written by `trim export` on `obs` by decoding the protobuf and
/// interpreting its graph node by node with ONNX semantics. Supports exactly the ops the
/// exporter uses; anything else (or any shape that does not fit) is an error.
///
/// # Shapes
/// `obs: [n][d]` (d = 5, or 6 with the λ input; every row the same width) → every graph output
/// by name, each `[n, k]`
pub fn evaluate<R: AsRef<[f32]>>(
    model: &[u8],
    obs: &[R],
) -> Result<BTreeMap<String, Value>, String> {
    let d = obs.first().map_or(AGG_DIM, |r| r.as_ref().len());
    if obs.iter().any(|r| r.as_ref().len() != d) {
        return Err("observation rows of different widths".into());
    }
    let Graph {
        mut env,
        input,
        outputs,
        nodes,
    } = parse_model(model)?;
    let x = (
        vec![obs.len(), d],
        obs.iter()
            .flat_map(|r| r.as_ref().iter().copied())
            .collect(),
    );
    env.insert(input, x);
    for node in &nodes {
        let get = |i: usize| -> Result<&Value, String> {
            let n = node
                .ins
                .get(i)
                .ok_or_else(|| format!("{}: missing input {i}", node.op))?;
            env.get(n)
                .ok_or_else(|| format!("{}: unknown tensor {n}", node.op))
        };
        let out = match node.op.as_str() {
            "Gemm" => gemm(node, get(0)?, get(1)?, get(2)?)?,
            "LayerNormalization" => layer_norm(node, get(0)?, get(1)?, get(2)?)?,
            "Tanh" => {
                let (xs, x) = get(0)?;
                (xs.clone(), x.iter().map(|v| v.tanh()).collect())
            }
            "Softmax" => softmax(node, get(0)?)?,
            other => return Err(format!("unsupported op {other}")),
        };
        let name = node
            .outs
            .first()
            .ok_or_else(|| format!("{}: no output", node.op))?;
        env.insert(name.clone(), out);
    }
    outputs
        .into_iter()
        .map(|o| {
            env.remove(&o)
                .map(|v| (o.clone(), v))
                .ok_or_else(|| format!("output {o} is never computed"))
        })
        .collect()
}

/// Decode `ModelProto` → opset check → `GraphProto`.
fn parse_model(model: &[u8]) -> Result<Graph, String> {
    let mut opset = None;
    let mut graph = None;
    for (f, v) in &decode(model)? {
        match f {
            7 => graph = Some(bytes(v)?),
            8 => {
                for (g, w) in decode(bytes(v)?)? {
                    if let (2, Field::Varint(n)) = (g, w) {
                        opset = Some(n);
                    }
                }
            }
            _ => {}
        }
    }
    if opset != Some(OPSET) {
        return Err(format!("opset {opset:?}, expected {OPSET}"));
    }
    let mut g = Graph {
        env: BTreeMap::new(),
        input: String::new(),
        outputs: Vec::new(),
        nodes: Vec::new(),
    };
    let mut input = None;
    for (f, v) in &decode(graph.ok_or("no graph")?)? {
        match f {
            1 => g.nodes.push(parse_node(bytes(v)?)?),
            5 => {
                let (name, value) = parse_initializer(bytes(v)?)?;
                g.env.insert(name, value);
            }
            11 | 12 => {
                let name = decode(bytes(v)?)?
                    .iter()
                    .find(|(g, _)| *g == 1)
                    .map(|(_, w)| text(w))
                    .transpose()?
                    .ok_or("value info without a name")?;
                if *f == 11 {
                    input = Some(name);
                } else {
                    g.outputs.push(name);
                }
            }
            _ => {}
        }
    }
    g.input = input.ok_or("graph has no input")?;
    Ok(g)
}

/// `TensorProto` → (name, f32 tensor from `raw_data`).
fn parse_initializer(b: &[u8]) -> Result<(String, Value), String> {
    let (mut dims, mut name, mut raw, mut dtype) = (Vec::new(), None, None, None);
    for (g, w) in decode(b)? {
        match (g, &w) {
            (1, Field::Varint(d)) => {
                dims.push(usize::try_from(*d).map_err(|_| format!("dimension {d} too large"))?)
            }
            (2, Field::Varint(t)) => dtype = Some(*t as i64),
            (8, _) => name = Some(text(&w)?),
            (9, Field::Bytes(b)) => raw = Some(*b),
            _ => {}
        }
    }
    let name = name.ok_or("initializer without a name")?;
    if dtype != Some(FLOAT) {
        return Err(format!(
            "initializer {name}: data type {dtype:?}, expected FLOAT"
        ));
    }
    let raw = raw.ok_or_else(|| format!("initializer {name}: no raw_data"))?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(4));
    if count != Some(raw.len()) {
        return Err(format!(
            "initializer {name}: {} bytes for shape {dims:?}",
            raw.len()
        ));
    }
    let data = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((name, (dims, data)))
}

/// `NodeProto` → op type, inputs, outputs, int and float attributes.
fn parse_node(b: &[u8]) -> Result<NodeSpec, String> {
    let mut n = NodeSpec {
        op: String::new(),
        ins: Vec::new(),
        outs: Vec::new(),
        ints: Vec::new(),
        floats: Vec::new(),
    };
    for (g, w) in decode(b)? {
        match g {
            1 => n.ins.push(text(&w)?),
            2 => n.outs.push(text(&w)?),
            4 => n.op = text(&w)?,
            5 => {
                let (mut name, mut i, mut fl) = (String::new(), None, None);
                for (h, x) in decode(bytes(&w)?)? {
                    match (h, x) {
                        (1, x) => name = text(&x)?,
                        (2, Field::Fixed32(b)) => fl = Some(f32::from_le_bytes(b)),
                        (3, Field::Varint(v)) => i = Some(v as i64),
                        _ => {}
                    }
                }
                if let Some(i) = i {
                    n.ints.push((name.clone(), i));
                }
                if let Some(f) = fl {
                    n.floats.push((name, f));
                }
            }
            _ => {}
        }
    }
    Ok(n)
}

/// The `[rows, cols]` of a rank-2 tensor whose data fits its shape.
fn matrix(v: &Value, what: &str) -> Result<(usize, usize), String> {
    match v.0[..] {
        [r, c] if r.checked_mul(c) == Some(v.1.len()) => Ok((r, c)),
        _ => Err(format!(
            "{what}: expected a matrix, got shape {:?} with {} values",
            v.0,
            v.1.len()
        )),
    }
}

/// `Y = X Wᵀ + b` (transA = 0, transB = 1 only).
fn gemm(node: &NodeSpec, x: &Value, w: &Value, b: &Value) -> Result<Value, String> {
    if node.int("transA", 0) != 0 || node.int("transB", 0) != 1 {
        return Err("Gemm: only transA = 0, transB = 1 supported".into());
    }
    let ((n, k), (m, k2)) = (matrix(x, "Gemm input")?, matrix(w, "Gemm weight")?);
    if k2 != k || b.1.len() != m {
        return Err(format!(
            "Gemm: shapes {:?} × {:?}ᵀ + [{}]",
            x.0,
            w.0,
            b.1.len()
        ));
    }
    let mut y = vec![0.0f32; n * m];
    for r in 0..n {
        for o in 0..m {
            let dot: f32 = (0..k).map(|j| x.1[r * k + j] * w.1[o * k + j]).sum();
            y[r * m + o] = dot + b.1[o];
        }
    }
    Ok((vec![n, m], y))
}

/// LayerNormalization over the last axis (biased variance, ε inside the root).
fn layer_norm(node: &NodeSpec, x: &Value, g: &Value, b: &Value) -> Result<Value, String> {
    if ![-1, 1].contains(&node.int("axis", -1)) {
        return Err("LayerNormalization: only the last axis is supported".into());
    }
    let (_, d) = matrix(x, "LayerNormalization input")?;
    if d == 0 || g.1.len() != d || b.1.len() != d {
        return Err(format!(
            "LayerNormalization: {d} features, {} scales, {} biases",
            g.1.len(),
            b.1.len()
        ));
    }
    let eps = node.float("epsilon", 1e-5);
    let mut y = x.1.clone();
    for row in y.chunks_exact_mut(d) {
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let denom = (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&g.1).zip(&b.1) {
            *v = (*v - mean) / denom * g + b;
        }
    }
    Ok((x.0.clone(), y))
}

/// Softmax over the last axis.
fn softmax(node: &NodeSpec, x: &Value) -> Result<Value, String> {
    if ![-1, 1].contains(&node.int("axis", -1)) {
        return Err("Softmax: only the last axis is supported".into());
    }
    let (_, d) = matrix(x, "Softmax input")?;
    let mut y = x.1.clone();
    for row in y.chunks_exact_mut(d.max(1)) {
        let m = row.iter().fold(f32::MIN, |a, &b| a.max(b));
        let s: f32 = row.iter().map(|v| (v - m).exp()).sum();
        for v in row.iter_mut() {
            *v = (*v - m).exp() / s;
        }
    }
    Ok((x.0.clone(), y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncations_are_errors_not_panics() {
        let mut rng = trim_env::Rng::new(9);
        let obs = [[0.5f32; AGG_DIM]];
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| (rng.f32() * 256.0) as u8).collect();
            let _ = evaluate(&bytes, &obs);
        }
        assert!(evaluate(&[], &obs).is_err());
    }
}

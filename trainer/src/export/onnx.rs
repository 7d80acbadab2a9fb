//! A minimal ONNX writer for the fixed TRIM-Agg MLP.
//!
//! Why hand-written: burn-onnx's exporter is experimental, traces through burn's `capture`
//! feature (a rebuild of every burn crate), and would record our `tanh = 2σ(2x) − 1` as four
//! ops with generated tensor names. The network is fixed and tiny, so this module encodes the
//! ONNX protobuf directly (≈ 10 message types) with the ops a runtime fuses well and stable
//! names: `Gemm` (transB = 1, weights in PyTorch `[out, in]` layout), `LayerNormalization`
//! (opset 17, ε = 1e-5), `Tanh`, `Softmax`.
//!
//! Graph: input `obs` `[batch, 5]` (symbolic `batch`) → outputs `logits` `[batch, 2]`,
//! `probs` `[batch, 2]` (softmax of the logits) and `value` `[batch, 1]` (critic). No action
//! masking: in serving both actions are always available.

use crate::model::{LN_EPS, N_ACTIONS, PolicyWeights};
use trim_env::AGG_DIM;

/// Opset of the default domain (LayerNormalization needs ≥ 17).
pub const OPSET: u64 = 17;
/// ONNX IR version written (IR 8 goes with opset 17).
pub const IR_VERSION: u64 = 8;

/// Protobuf wire encoding helpers (varint, length-delimited, fixed32).
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn key(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }
    fn int(&mut self, field: u64, v: i64) -> &mut Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }
    fn bytes(&mut self, field: u64, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, field: u64, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(&mut self, field: u64, m: Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
    fn f32(&mut self, field: u64, v: f32) -> &mut Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

/// `TensorProto` data type FLOAT.
const FLOAT: i64 = 1;

/// `TensorProto`: an f32 initializer.
fn tensor(name: &str, shape: &[usize], data: &[f32]) -> Msg {
    let mut t = Msg::default();
    for &d in shape {
        t.int(1, d as i64);
    }
    t.int(2, FLOAT).str(8, name);
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

/// A dimension: `Ok(n)` fixed, `Err(name)` symbolic.
type Dim<'a> = Result<usize, &'a str>;

/// `ValueInfoProto` of an f32 tensor.
fn value_info(name: &str, dims: &[Dim]) -> Msg {
    let mut shape = Msg::default();
    for d in dims {
        let mut dim = Msg::default();
        match d {
            Ok(n) => dim.int(1, *n as i64),
            Err(p) => dim.str(2, p),
        };
        shape.msg(1, dim);
    }
    let mut tt = Msg::default();
    tt.int(1, FLOAT).msg(2, shape);
    let mut ty = Msg::default();
    ty.msg(1, tt);
    let mut vi = Msg::default();
    vi.str(1, name).msg(2, ty);
    vi
}

enum Attr<'a> {
    Int(&'a str, i64),
    Float(&'a str, f32),
}

/// `NodeProto`.
fn node(op: &str, name: &str, inputs: &[&str], output: &str, attrs: &[Attr]) -> Msg {
    let mut n = Msg::default();
    for i in inputs {
        n.str(1, i);
    }
    n.str(2, output).str(3, name).str(4, op);
    for a in attrs {
        let mut m = Msg::default();
        match a {
            // AttributeProto: name = 1, f = 2, i = 3, type = 20 (FLOAT = 1, INT = 2).
            Attr::Int(k, v) => m.str(1, k).int(3, *v).int(20, 2),
            Attr::Float(k, v) => m.str(1, k).f32(2, *v).int(20, 1),
        };
        n.msg(5, m);
    }
    n
}

/// Encode the policy as an ONNX model; `doc` goes into the model's doc string and
/// `metadata` into `metadata_props` (e.g. format version, feature names).
pub fn encode(w: &PolicyWeights, doc: &str, metadata: &[(&str, String)]) -> Vec<u8> {
    let mut graph = Msg::default();
    let mut nodes: Vec<Msg> = Vec::new();
    // Linear → LayerNorm → Tanh block; returns the output name.
    let block = |nodes: &mut Vec<Msg>, x: &str, lin: &str, ln: &str| -> String {
        let g = format!("{lin}.out");
        nodes.push(node(
            "Gemm",
            lin,
            &[x, &format!("{lin}.weight"), &format!("{lin}.bias")],
            &g,
            &[Attr::Int("transB", 1)],
        ));
        let n = format!("{ln}.out");
        nodes.push(node(
            "LayerNormalization",
            ln,
            &[&g, &format!("{ln}.weight"), &format!("{ln}.bias")],
            &n,
            &[Attr::Int("axis", -1), Attr::Float("epsilon", LN_EPS as f32)],
        ));
        let t = format!("{ln}.tanh");
        nodes.push(node("Tanh", &format!("{ln}_tanh"), &[&n], &t, &[]));
        t
    };
    let linear = |nodes: &mut Vec<Msg>, x: &str, lin: &str, out: &str| {
        nodes.push(node(
            "Gemm",
            lin,
            &[x, &format!("{lin}.weight"), &format!("{lin}.bias")],
            out,
            &[Attr::Int("transB", 1)],
        ));
    };
    let h = block(&mut nodes, "obs", "trunk1", "trunk_ln1");
    let h = block(&mut nodes, &h, "trunk2", "trunk_ln2");
    let a = block(&mut nodes, &h, "actor1", "actor_ln");
    linear(&mut nodes, &a, "actor_out", "logits");
    nodes.push(node(
        "Softmax",
        "probs",
        &["logits"],
        "probs",
        &[Attr::Int("axis", -1)],
    ));
    let c = block(&mut nodes, &h, "critic1", "critic_ln");
    linear(&mut nodes, &c, "critic_out", "value");

    for n in nodes {
        graph.msg(1, n);
    }
    graph.str(2, "trim_policy");
    for (name, shape, data) in w.named_params() {
        graph.msg(5, tensor(&name, &shape, data));
    }
    graph.str(10, doc);
    let batch: Dim = Err("batch");
    graph.msg(11, value_info("obs", &[batch, Ok(AGG_DIM)]));
    graph.msg(12, value_info("logits", &[batch, Ok(N_ACTIONS)]));
    graph.msg(12, value_info("probs", &[batch, Ok(N_ACTIONS)]));
    graph.msg(12, value_info("value", &[batch, Ok(1)]));

    let mut model = Msg::default();
    model
        .int(1, IR_VERSION as i64)
        .str(2, "trim")
        .str(3, env!("CARGO_PKG_VERSION"))
        .str(4, "trim.routing")
        .int(5, 1)
        .str(6, doc)
        .msg(7, graph);
    let mut opset = Msg::default();
    opset.str(1, "").int(2, OPSET as i64);
    model.msg(8, opset);
    for (k, v) in metadata {
        let mut e = Msg::default();
        e.str(1, k).str(2, v);
        model.msg(14, e);
    }
    model.0
}

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
type Value = (Vec<usize>, Vec<f32>);

/// Evaluate an ONNX model written by [`encode`] on `obs` by decoding the protobuf and
/// interpreting its graph node by node with ONNX semantics. Supports exactly the ops `encode`
/// uses (`Gemm`, `LayerNormalization` over the last axis, `Tanh`, `Softmax`); anything else is
/// an error. This is the Rust-side check that the *bytes* of `policy.onnx` compute the policy,
/// independent of how they were produced; onnxruntime is checked from Python.
///
/// # Shapes
/// `obs: [n][5]` → every graph output by name, each `[n, k]`
pub fn evaluate(
    model: &[u8],
    obs: &[[f32; AGG_DIM]],
) -> Result<std::collections::BTreeMap<String, Value>, String> {
    let fields = decode(model)?;
    let mut opset = None;
    let mut graph = None;
    for (f, v) in &fields {
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
    let graph = decode(graph.ok_or("no graph")?)?;
    let mut env: std::collections::BTreeMap<String, Value> = Default::default();
    let mut input_name = None;
    let mut outputs = Vec::new();
    let mut nodes = Vec::new();
    for (f, v) in &graph {
        match f {
            1 => nodes.push(bytes(v)?),
            5 => {
                let (mut dims, mut name, mut raw, mut dtype) = (Vec::new(), None, None, None);
                for (g, w) in decode(bytes(v)?)? {
                    match (g, &w) {
                        (1, Field::Varint(d)) => dims.push(*d as usize),
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
                if raw.len() != 4 * dims.iter().product::<usize>() {
                    return Err(format!(
                        "initializer {name}: {} bytes for shape {dims:?}",
                        raw.len()
                    ));
                }
                let data = raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                env.insert(name, (dims, data));
            }
            11 | 12 => {
                let name = decode(bytes(v)?)?
                    .iter()
                    .find(|(g, _)| *g == 1)
                    .map(|(_, w)| text(w))
                    .transpose()?
                    .ok_or("value info without a name")?;
                if *f == 11 {
                    input_name = Some(name);
                } else {
                    outputs.push(name);
                }
            }
            _ => {}
        }
    }
    let input = input_name.ok_or("graph has no input")?;
    env.insert(
        input,
        (
            vec![obs.len(), AGG_DIM],
            obs.iter().flatten().copied().collect(),
        ),
    );
    for node in nodes {
        let (mut ins, mut outs, mut op, mut ints, mut floats) = (
            Vec::new(),
            Vec::new(),
            String::new(),
            Vec::new(),
            Vec::new(),
        );
        for (g, w) in decode(node)? {
            match g {
                1 => ins.push(text(&w)?),
                2 => outs.push(text(&w)?),
                4 => op = text(&w)?,
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
                        ints.push((name.clone(), i));
                    }
                    if let Some(f) = fl {
                        floats.push((name, f));
                    }
                }
                _ => {}
            }
        }
        let int = |k: &str, d: i64| ints.iter().find(|(n, _)| n == k).map_or(d, |x| x.1);
        let get = |i: usize| -> Result<&Value, String> {
            let n = ins
                .get(i)
                .ok_or_else(|| format!("{op}: missing input {i}"))?;
            env.get(n)
                .ok_or_else(|| format!("{op}: unknown tensor {n}"))
        };
        let out = match op.as_str() {
            "Gemm" => {
                let ((xs, x), (ws, w), (_, b)) = (get(0)?, get(1)?, get(2)?);
                if int("transA", 0) != 0 || int("transB", 0) != 1 {
                    return Err("Gemm: only transA = 0, transB = 1 supported".into());
                }
                let (n, k, m) = (xs[0], xs[1], ws[0]);
                if ws[1] != k || b.len() != m {
                    return Err(format!("Gemm: shapes {xs:?} × {ws:?}ᵀ + [{}]", b.len()));
                }
                let mut y = vec![0.0f32; n * m];
                for r in 0..n {
                    for o in 0..m {
                        let dot: f32 = (0..k).map(|j| x[r * k + j] * w[o * k + j]).sum();
                        y[r * m + o] = dot + b[o];
                    }
                }
                (vec![n, m], y)
            }
            "LayerNormalization" => {
                let ((xs, x), (_, g), (_, b)) = (get(0)?, get(1)?, get(2)?);
                if ![-1, 1].contains(&int("axis", -1)) {
                    return Err("LayerNormalization: only the last axis is supported".into());
                }
                let eps = floats
                    .iter()
                    .find(|(n, _)| n == "epsilon")
                    .map_or(1e-5, |x| x.1);
                let d = xs[1];
                let mut y = x.clone();
                for row in y.chunks_exact_mut(d) {
                    let mean = row.iter().sum::<f32>() / d as f32;
                    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
                    let denom = (var + eps).sqrt();
                    for ((v, g), b) in row.iter_mut().zip(g).zip(b) {
                        *v = (*v - mean) / denom * g + b;
                    }
                }
                (xs.clone(), y)
            }
            "Tanh" => {
                let (xs, x) = get(0)?;
                (xs.clone(), x.iter().map(|v| v.tanh()).collect())
            }
            "Softmax" => {
                let (xs, x) = get(0)?;
                if ![-1, 1].contains(&int("axis", -1)) {
                    return Err("Softmax: only the last axis is supported".into());
                }
                let mut y = x.clone();
                for row in y.chunks_exact_mut(xs[1]) {
                    let m = row.iter().fold(f32::MIN, |a, &b| a.max(b));
                    let s: f32 = row.iter().map(|v| (v - m).exp()).sum();
                    for v in row.iter_mut() {
                        *v = (*v - m).exp() / s;
                    }
                }
                (xs.clone(), y)
            }
            other => return Err(format!("unsupported op {other}")),
        };
        let name = outs.first().ok_or_else(|| format!("{op}: no output"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_encode_like_protobuf() {
        let mut m = Msg::default();
        m.varint(1);
        m.varint(300);
        m.varint(u64::MAX);
        assert_eq!(&m.0[..3], &[0x01, 0xac, 0x02]);
        // −1 as int64 is ten bytes on the wire.
        assert_eq!(m.0.len(), 3 + 10);
        let mut k = Msg::default();
        k.str(4, "Gemm");
        assert_eq!(k.0, b"\x22\x04Gemm");
    }

    #[test]
    fn evaluated_onnx_matches_the_network() {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let net = crate::model::ActorCritic::new(32, &mut trim_env::Rng::new(8), &dev);
        let w = net.weights();
        let bytes = encode(&w, "doc", &[("k", "v".to_string())]);
        let obs = crate::export::parity_observations();
        let out = evaluate(&bytes, &obs).unwrap();
        let (ls, logits) = &out["logits"];
        assert_eq!(ls, &vec![obs.len(), 2]);
        assert_eq!(out["value"].0, vec![obs.len(), 1]);
        for (i, o) in obs.iter().enumerate() {
            let (l, v) = w.forward(o);
            assert!((l[0] - logits[2 * i]).abs() < 1e-5 && (l[1] - logits[2 * i + 1]).abs() < 1e-5);
            assert!((v - out["value"].1[i]).abs() < 1e-4);
            let p = crate::export::softmax2(l);
            assert!((p[1] - out["probs"].1[2 * i + 1]).abs() < 1e-6);
        }
        // Truncated bytes are an error, not a panic.
        assert!(evaluate(&bytes[..bytes.len() / 3], &obs).is_err());
    }
}

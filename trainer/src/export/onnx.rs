//! A minimal ONNX writer for the fixed TRIM-Agg MLP.
//!
//! Why hand-written: burn-onnx's exporter is experimental, traces through burn's `capture`
//! feature (a rebuild of every burn crate), and would record our `tanh = 2σ(2x) − 1` as four
//! ops with generated tensor names. The network is fixed and tiny, so this module encodes the
//! ONNX protobuf directly (≈ 10 message types) with the ops a runtime fuses well and stable
//! names: `Gemm` (transB = 1, weights in PyTorch `[out, in]` layout), `LayerNormalization`
//! (opset 17, ε = 1e-5), `Tanh`, `Softmax`.
//!
//! Graph: input `obs` `[batch, d]` (d = 5, or 6 with the λ input; symbolic `batch`) → outputs `logits` `[batch, 2]`,
//! `probs` `[batch, 2]` (softmax of the logits) and `value` `[batch, 1]` (critic). No action
//! masking: in serving both actions are always available.

use trim_router::mlp::LN_EPS;
use trim_router::onnx::{FLOAT, IR_VERSION, OPSET};
use trim_router::{AggNet as PolicyWeights, N_ACTIONS};

/// Protobuf wire encoding helpers (varint, length-delimited, fixed32).
#[derive(Default)]
pub(super) struct Msg(pub(super) Vec<u8>);

impl Msg {
    pub(super) fn varint(&mut self, mut v: u64) {
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
    pub(super) fn key(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }
    pub(super) fn int(&mut self, field: u64, v: i64) -> &mut Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }
    pub(super) fn bytes(&mut self, field: u64, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub(super) fn str(&mut self, field: u64, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    pub(super) fn msg(&mut self, field: u64, m: Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
    pub(super) fn f32(&mut self, field: u64, v: f32) -> &mut Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

/// `TensorProto`: an f32 initializer.
pub(super) fn tensor(name: &str, shape: &[usize], data: &[f32]) -> Msg {
    let mut t = Msg::default();
    for &d in shape {
        t.int(1, d as i64);
    }
    t.int(2, FLOAT).str(8, name);
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

/// `TensorProto`: an int64 initializer (shapes, indices).
pub(super) fn tensor_i64(name: &str, shape: &[usize], data: &[i64]) -> Msg {
    let mut t = Msg::default();
    for &d in shape {
        t.int(1, d as i64);
    }
    t.int(2, INT64).str(8, name);
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

/// ONNX `TensorProto.DataType.INT64`.
const INT64: i64 = 7;

/// A dimension: `Ok(n)` fixed, `Err(name)` symbolic.
pub(super) type Dim<'a> = Result<usize, &'a str>;

/// `ValueInfoProto` of an f32 tensor.
pub(super) fn value_info(name: &str, dims: &[Dim]) -> Msg {
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

pub(super) enum Attr<'a> {
    Int(&'a str, i64),
    Float(&'a str, f32),
    Ints(&'a str, &'a [i64]),
}

/// `NodeProto`.
pub(super) fn node(op: &str, name: &str, inputs: &[&str], output: &str, attrs: &[Attr]) -> Msg {
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
            // ints = 8 (repeated, unpacked), type INTS = 7.
            Attr::Ints(k, vs) => {
                m.str(1, k);
                for v in vs.iter() {
                    m.int(8, *v);
                }
                m.int(20, 7)
            }
        };
        n.msg(5, m);
    }
    n
}

/// Encode the policy as an ONNX model; `doc` goes into the model's doc string and
/// `metadata` into `metadata_props` (e.g. format version, feature names).
pub fn encode(w: &PolicyWeights, doc: &str, metadata: &[(&str, String)]) -> Vec<u8> {
    let mut graph = Msg::default();
    for n in graph_nodes() {
        graph.msg(1, n);
    }
    graph.str(2, "trim_policy");
    for (name, shape, data) in w.named_params() {
        graph.msg(5, tensor(&name, &shape, data));
    }
    graph.str(10, doc);
    let batch: Dim = Err("batch");
    graph.msg(11, value_info("obs", &[batch, Ok(w.input_dim())]));
    graph.msg(12, value_info("logits", &[batch, Ok(N_ACTIONS)]));
    graph.msg(12, value_info("probs", &[batch, Ok(N_ACTIONS)]));
    graph.msg(12, value_info("value", &[batch, Ok(1)]));

    model_bytes(graph, doc, metadata)
}

/// `ModelProto` around a graph: IR version, producer, opset, doc string and metadata.
pub(super) fn model_bytes(graph: Msg, doc: &str, metadata: &[(&str, String)]) -> Vec<u8> {
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

/// The graph's nodes in order: trunk, actor head + softmax, critic head.
fn graph_nodes() -> Vec<Msg> {
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
    nodes
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
        let obs = trim_router::parity::parity_observations(trim_env::AGG_DIM);
        let out = trim_router::onnx::evaluate(&bytes, &obs).unwrap();
        let (ls, logits) = &out["logits"];
        assert_eq!(ls, &vec![obs.len(), 2]);
        assert_eq!(out["value"].0, vec![obs.len(), 1]);
        for (i, o) in obs.iter().enumerate() {
            let (l, v) = w.forward(o);
            assert!((l[0] - logits[2 * i]).abs() < 1e-5 && (l[1] - logits[2 * i + 1]).abs() < 1e-5);
            assert!((v - out["value"].1[i]).abs() < 1e-4);
            let p = trim_router::mlp::softmax2(l);
            assert!((p[1] - out["probs"].1[2 * i + 1]).abs() < 1e-6);
        }
        // Truncated bytes are an error, not a panic.
        assert!(trim_router::onnx::evaluate(&bytes[..bytes.len() / 3], &obs).is_err());
    }
}

//! The TRIM-Seq network as an ONNX graph (opset 17) with a symbolic sequence axis.
//!
//! Input `tokens` `[batch, seq, 5]` (the kept steps then the candidate, `seq` ≤ 32, every row of
//! a batch the same length: no padding) and, for a λ-conditioned network, `lambda_input`
//! `[batch, 1]` (the scaled log λ, concatenated to the heads' input); outputs `logits` `[batch, 2]`, `probs` `[batch, 2]` and
//! `value` `[batch, 1]`, read at the last token. The causal mask is built inside the graph from
//! the input's length (`Shape` → `Range` → `Greater` → `Where`), so one file serves every
//! history length. Dense weights are stored transposed (`<name>.weight_t`, `[in, out]`) for
//! `MatMul` on 3-D activations; everything else keeps the safetensors names.

use trim_router::SeqNet;
use trim_router::mlp::LN_EPS;
use trim_router::seq::TOKEN_DIM;

use super::onnx::{Attr, Dim, Msg, model_bytes, node, tensor, tensor_i64, value_info};

/// Graph builder: nodes in order and the initializers they use.
#[derive(Default)]
struct Graph {
    nodes: Vec<Msg>,
    inits: Vec<Msg>,
}

impl Graph {
    fn op(&mut self, op: &str, inputs: &[&str], out: &str, attrs: &[Attr]) -> String {
        self.nodes.push(node(op, out, inputs, out, attrs));
        out.to_string()
    }

    /// `x @ W.T + b` for the dense layer `name` (`x`: `[.., in]`).
    fn dense(&mut self, x: &str, name: &str) -> String {
        let m = self.op(
            "MatMul",
            &[x, &format!("{name}.weight_t")],
            &format!("{name}.mm"),
            &[],
        );
        self.op(
            "Add",
            &[&m, &format!("{name}.bias")],
            &format!("{name}.out"),
            &[],
        )
    }

    fn norm(&mut self, x: &str, name: &str) -> String {
        let attrs = [Attr::Int("axis", -1), Attr::Float("epsilon", LN_EPS as f32)];
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        self.op(
            "LayerNormalization",
            &[x, &w, &b],
            &format!("{name}.out"),
            &attrs,
        )
    }
}

/// Encode `net` as an ONNX model.
pub fn encode_seq(net: &SeqNet, doc: &str, metadata: &[(&str, String)]) -> Vec<u8> {
    let s = net.shape();
    let dh = s.dim / s.heads;
    let mut g = Graph::default();
    for (name, shape, data) in net.named_params() {
        if shape.len() == 2 {
            let (o, i) = (shape[0], shape[1]);
            let mut t = vec![0.0f32; o * i];
            for r in 0..o {
                for c in 0..i {
                    t[c * o + r] = data[r * i + c];
                }
            }
            let base = name.trim_end_matches(".weight");
            g.inits
                .push(tensor(&format!("{base}.weight_t"), &[i, o], &t));
        } else {
            g.inits.push(tensor(&name, &shape, data));
        }
    }
    let heads = [0, 0, s.heads as i64, dh as i64];
    g.inits.push(tensor_i64("c.split_heads", &[4], &heads));
    g.inits
        .push(tensor_i64("c.merge_heads", &[3], &[0, 0, s.dim as i64]));
    for (name, v) in [("c.i0", 0), ("c.i1", 1), ("c.last", -1)] {
        g.inits.push(tensor_i64(name, &[], &[v]));
    }
    g.inits.push(tensor_i64("c.ax0", &[1], &[0]));
    g.inits.push(tensor_i64("c.ax1", &[1], &[1]));
    let scale = 1.0 / (dh as f32).sqrt();
    for (name, v) in [("c.scale", scale), ("c.masked", -1e9), ("c.zero", 0.0)] {
        g.inits.push(tensor(name, &[], &[v]));
    }
    causal_bias(&mut g);
    let mut h = g.dense("tokens", "embed");
    for i in 0..s.layers {
        h = block(&mut g, &h, &format!("blocks.{i}"));
    }
    let z = g.op(
        "Gather",
        &[&h, "c.last"],
        "last_token",
        &[Attr::Int("axis", 1)],
    );
    let z = g.norm(&z, "ln_f");
    // A λ-conditioned network's heads read the λ input after the final representation.
    let z = match s.lambda_input {
        true => g.op(
            "Concat",
            &[&z, "lambda_input"],
            "z_lambda",
            &[Attr::Int("axis", -1)],
        ),
        false => z,
    };
    let a = g.dense(&z, "actor1");
    let a = g.op("Tanh", &[&a], "actor1.tanh", &[]);
    let l = g.dense(&a, "actor_out");
    g.op("Identity", &[&l], "logits", &[]);
    g.op("Softmax", &["logits"], "probs", &[Attr::Int("axis", -1)]);
    let c = g.dense(&z, "critic1");
    let c = g.op("Tanh", &[&c], "critic1.tanh", &[]);
    let v = g.dense(&c, "critic_out");
    g.op("Identity", &[&v], "value", &[]);

    let mut graph = Msg::default();
    for n in g.nodes {
        graph.msg(1, n);
    }
    graph.str(2, "trim_seq_policy");
    for t in g.inits {
        graph.msg(5, t);
    }
    graph.str(10, doc);
    let (batch, seq): (Dim, Dim) = (Err("batch"), Err("seq"));
    graph.msg(11, value_info("tokens", &[batch, seq, Ok(TOKEN_DIM)]));
    if s.lambda_input {
        graph.msg(11, value_info("lambda_input", &[batch, Ok(1)]));
    }
    graph.msg(12, value_info("logits", &[batch, Ok(2)]));
    graph.msg(12, value_info("probs", &[batch, Ok(2)]));
    graph.msg(12, value_info("value", &[batch, Ok(1)]));
    model_bytes(graph, doc, metadata)
}

/// `bias [seq, seq]`: 0 where key ≤ query, −1e9 after.
fn causal_bias(g: &mut Graph) {
    let shape = g.op("Shape", &["tokens"], "c.shape", &[]);
    let len = g.op(
        "Gather",
        &[&shape, "c.i1"],
        "c.len",
        &[Attr::Int("axis", 0)],
    );
    let r = g.op("Range", &["c.i0", &len, "c.i1"], "c.range", &[]);
    let q = g.op("Unsqueeze", &[&r, "c.ax1"], "c.query", &[]);
    let k = g.op("Unsqueeze", &[&r, "c.ax0"], "c.key", &[]);
    let future = g.op("Greater", &[&k, &q], "c.future", &[]);
    g.op("Where", &[&future, "c.masked", "c.zero"], "c.bias", &[]);
}

/// One pre-LN transformer block on `h` `[batch, seq, d]`.
fn block(g: &mut Graph, h: &str, p: &str) -> String {
    let a = g.norm(h, &format!("{p}.ln1"));
    let heads = |g: &mut Graph, name: &str, perm: &[i64]| {
        let x = g.dense(&a, &format!("{p}.{name}"));
        let x = g.op(
            "Reshape",
            &[&x, "c.split_heads"],
            &format!("{p}.{name}.heads"),
            &[],
        );
        g.op(
            "Transpose",
            &[&x],
            &format!("{p}.{name}.t"),
            &[Attr::Ints("perm", perm)],
        )
    };
    let q = heads(g, "q", &[0, 2, 1, 3]);
    let k = heads(g, "k", &[0, 2, 3, 1]);
    let v = heads(g, "v", &[0, 2, 1, 3]);
    let s = g.op("MatMul", &[&q, &k], &format!("{p}.scores"), &[]);
    let s = g.op("Mul", &[&s, "c.scale"], &format!("{p}.scaled"), &[]);
    let s = g.op("Add", &[&s, "c.bias"], &format!("{p}.masked"), &[]);
    let w = g.op(
        "Softmax",
        &[&s],
        &format!("{p}.attn"),
        &[Attr::Int("axis", -1)],
    );
    let o = g.op("MatMul", &[&w, &v], &format!("{p}.mix"), &[]);
    let o = g.op(
        "Transpose",
        &[&o],
        &format!("{p}.mix.t"),
        &[Attr::Ints("perm", &[0, 2, 1, 3])],
    );
    let o = g.op(
        "Reshape",
        &[&o, "c.merge_heads"],
        &format!("{p}.merged"),
        &[],
    );
    let o = g.dense(&o, &format!("{p}.o"));
    let h = g.op("Add", &[h, &o], &format!("{p}.res1"), &[]);
    let c = g.norm(&h, &format!("{p}.ln2"));
    let f = g.dense(&c, &format!("{p}.ff1"));
    let f = g.op("Relu", &[&f], &format!("{p}.relu"), &[]);
    let f = g.dense(&f, &format!("{p}.ff2"));
    g.op("Add", &[&h, &f], &format!("{p}.res2"), &[])
}

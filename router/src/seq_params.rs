//! The parameters of a [`SeqNet`] by name and shape (PyTorch layout: dense weights
//! `[out, in]`), in forward order: what the trainer copies its burn network into, and what an
//! export writes.

use crate::mlp::{Dense, Norm};
use crate::seq::{SeqBlock, SeqNet, SeqShape, TOKEN_DIM};

/// `(name, d_in, d_out)` of every dense layer of one block, in forward order.
fn block_dense(s: &SeqShape) -> [(&'static str, usize, usize); 6] {
    let (d, f) = (s.dim, s.ff);
    [
        ("q", d, d),
        ("k", d, d),
        ("v", d, d),
        ("o", d, d),
        ("ff1", d, f),
        ("ff2", f, d),
    ]
}

impl SeqNet {
    /// Every parameter with its name and shape, in forward order (weight before bias).
    pub fn named_params(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out = vec![];
        dense_into(&mut out, "embed".into(), &self.embed);
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("blocks.{i}");
            norm(&mut out, format!("{p}.ln1"), &b.ln1);
            for (name, l) in [("q", &b.q), ("k", &b.k), ("v", &b.v), ("o", &b.o)] {
                dense_into(&mut out, format!("{p}.{name}"), l);
            }
            norm(&mut out, format!("{p}.ln2"), &b.ln2);
            dense_into(&mut out, format!("{p}.ff1"), &b.ff1);
            dense_into(&mut out, format!("{p}.ff2"), &b.ff2);
        }
        norm(&mut out, "ln_f".into(), &self.ln_f);
        for (name, l) in [
            ("actor1", &self.actor1),
            ("actor_out", &self.actor_out),
            ("critic1", &self.critic1),
            ("critic_out", &self.critic_out),
        ] {
            dense_into(&mut out, name.into(), l);
        }
        out
    }

    /// Rebuild from parameters named and shaped as [`named_params`](Self::named_params) gives
    /// them; `get(name, shape)` returns that parameter's row-major values or an error, passed
    /// through; bad sizes are refused with `bad_shape`'s error.
    pub fn from_named_params<E>(
        shape: SeqShape,
        bad_shape: impl FnOnce(String) -> E,
        mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f32>, E>,
    ) -> Result<Self, E> {
        shape.check().map_err(bad_shape)?;
        let d = shape.dim;
        let mut dense = |name: &str, d_in: usize, d_out: usize| -> Result<Dense, E> {
            Ok(Dense {
                d_in,
                d_out,
                w: get(&format!("{name}.weight"), &[d_out, d_in])?,
                b: get(&format!("{name}.bias"), &[d_out])?,
            })
        };
        let embed = dense("embed", TOKEN_DIM, d)?;
        let mut blocks = Vec::with_capacity(shape.layers);
        let mut layers = vec![];
        for i in 0..shape.layers {
            let p = format!("blocks.{i}");
            let mut ls = Vec::with_capacity(6);
            for (name, d_in, d_out) in block_dense(&shape) {
                ls.push(dense(&format!("{p}.{name}"), d_in, d_out)?);
            }
            layers.push(ls);
        }
        let e = usize::from(shape.lambda_input);
        let heads = [
            dense("actor1", d + e, d)?,
            dense("actor_out", d, 2)?,
            dense("critic1", d + e, d)?,
            dense("critic_out", d, 1)?,
        ];
        let mut norm = |name: &str| -> Result<Norm, E> {
            Ok(Norm {
                gamma: get(&format!("{name}.weight"), &[d])?,
                beta: get(&format!("{name}.bias"), &[d])?,
            })
        };
        for (i, ls) in layers.into_iter().enumerate() {
            let p = format!("blocks.{i}");
            let [q, k, v, o, ff1, ff2]: [Dense; 6] = ls
                .try_into()
                .unwrap_or_else(|_| unreachable!("six dense layers per block"));
            blocks.push(SeqBlock {
                ln1: norm(&format!("{p}.ln1"))?,
                q,
                k,
                v,
                o,
                ln2: norm(&format!("{p}.ln2"))?,
                ff1,
                ff2,
            });
        }
        let [actor1, actor_out, critic1, critic_out] = heads;
        Ok(SeqNet {
            shape,
            embed,
            blocks,
            ln_f: norm("ln_f")?,
            actor1,
            actor_out,
            critic1,
            critic_out,
        })
    }
}

fn dense_into<'a>(out: &mut Vec<(String, Vec<usize>, &'a [f32])>, name: String, l: &'a Dense) {
    out.push((format!("{name}.weight"), vec![l.d_out, l.d_in], &l.w[..]));
    out.push((format!("{name}.bias"), vec![l.d_out], &l.b[..]));
}

fn norm<'a>(out: &mut Vec<(String, Vec<usize>, &'a [f32])>, name: String, l: &'a Norm) {
    out.push((format!("{name}.weight"), vec![l.gamma.len()], &l.gamma[..]));
    out.push((format!("{name}.bias"), vec![l.beta.len()], &l.beta[..]));
}

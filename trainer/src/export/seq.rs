//! Export a TRIM-Seq checkpoint: `policy.safetensors`, `parity.json` and `policy.json`
//! ([`SeqManifest`], `"kind": "trim-seq"`), verified before anything is written: the network
//! rebuilt from the serialised bytes must reproduce the burn model's logits on the parity
//! histories (1 to 40 tokens) within 1e-5. `policy.onnx` ([`super::onnx_seq`], symbolic
//! sequence axis) is checked by onnxruntime against the same fixture
//! (`scripts/python/trim_seq_router.py DIR onnx`, run by the tests and CI): this crate
//! has no evaluator for attention graphs, so it is not re-evaluated here.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use trim_router::manifest::ParamSpec;
use trim_router::parity::TOLERANCE;
use trim_router::seq::{SEQ_KIND, SEQ_LEN, SEQ_OBS_DIM, TOKEN_DIM};
use trim_router::seq_export::{
    SEQ_EXPORT_KIND, SeqArchitecture, SeqManifest, SeqParity, parity_steps_in,
    seq_net_from_safetensors, seq_parity_diff, token_specs,
};
use trim_router::seq_router::step_row;
use trim_router::{SeqNet, SeqRouter, safetensors};

use super::{
    ExportError, ExportReport, FORMAT, FORMAT_VERSION, Format, MANIFEST, PARITY, SAFETENSORS,
    Written, model_names, run_evaluation, write,
};
use crate::checkpoint::{self, TrainState};
use crate::family::Family;
use crate::family::seq::{Seq, SeqLambda};
use crate::seq_model::SeqActorCritic;

/// Export the TRIM-Seq checkpoint (plain or λ-conditioned) at `checkpoint` into `out`.
pub(super) fn export_seq(
    checkpoint: &Path,
    format: Format,
    out: &Path,
) -> Result<ExportReport, ExportError> {
    let recorded = checkpoint::load_state(checkpoint)?.family;
    let (model, state) = {
        let device = crate::backend::Backend::Flex.device()?;
        match recorded == SeqLambda::NAME {
            true => checkpoint::load_model_as::<SeqLambda>(checkpoint, &device)?,
            false => checkpoint::load_model_as::<Seq>(checkpoint, &device)?,
        }
    };
    export_seq_model(checkpoint, (&model, &state), format, out)
}

fn export_seq_model(
    checkpoint: &Path,
    (model, state): (&SeqActorCritic, &TrainState),
    format: Format,
    out: &Path,
) -> Result<ExportReport, ExportError> {
    let mut warnings = Vec::new();
    if format == Format::Onnx {
        return Err(ExportError::invalid(
            checkpoint,
            "a TRIM-Seq export always holds policy.safetensors (the Rust router and the parity \
             check read it): use --format all (with ONNX) or safetensors",
        ));
    }
    let range = state.config.lambda_range.bounds().map(|(lo, hi)| [lo, hi]);
    let net = model
        .try_acting()
        .map_err(|e| ExportError::invalid(checkpoint, e))?;
    let evaluation = run_evaluation(checkpoint, &mut warnings)?;
    let fixture = fixture(model, checkpoint, range)?;
    let meta: BTreeMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("kind", SEQ_EXPORT_KIND.to_string()),
        ("run_name", state.run_name.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let st_path = out.join(SAFETENSORS);
    let bytes = safetensors::serialize(&net.named_params(), &meta)
        .map_err(|e| ExportError::invalid(&st_path, e))?;
    let rebuilt = seq_net_from_safetensors(&bytes, net.shape())
        .map_err(|e| ExportError::invalid(&st_path, e))?;
    let diff = seq_parity_diff(&SeqRouter::from_net(rebuilt), &fixture)
        .map_err(|e| ExportError::invalid(&st_path, e))?;
    if diff.is_nan() || diff > fixture.tolerance {
        return Err(ExportError::invalid(
            &st_path,
            format!("rebuilt network differs from the burn model by {diff} (> 1e-5)"),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| ExportError::io(out, e))?;
    let mut w = Written::default();
    w.put(out, SAFETENSORS, &bytes)?;
    let parity = serde_json::to_string_pretty(&fixture)
        .map_err(|e| ExportError::invalid(out.join(PARITY), e))?;
    w.put(out, PARITY, parity.as_bytes())?;
    let onnx_path = out.join(super::ONNX);
    if format == Format::All {
        let lam = match range {
            Some(_) => "; input lambda_input [batch, 1] = (log10(λ) + 3.5) / 1.5",
            None => "",
        };
        let doc = format!(
            "trim routing policy {} (TRIM-Seq); input tokens [batch, seq, 5] = the kept steps \
             then the candidate (see policy.json){lam}; logits/probs index 0 = continue, 1 = \
             regenerate",
            state.run_name
        );
        let meta_kv: Vec<(&str, String)> =
            meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        w.put(
            out,
            super::ONNX,
            &super::onnx_seq::encode_seq(&net, &doc, &meta_kv),
        )?;
    } else if onnx_path.exists() {
        std::fs::remove_file(&onnx_path).map_err(|e| ExportError::io(&onnx_path, e))?;
    }
    let files = std::mem::take(&mut w.files);
    let manifest = manifest(checkpoint, state, &net, evaluation, files, &mut warnings)?;
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| ExportError::invalid(out.join(MANIFEST), e))?;
    write(&out.join(MANIFEST), text.as_bytes())?;
    w.paths.push(out.join(MANIFEST));
    trim_router::Policy::load(out)?;
    Ok(ExportReport {
        files: w.paths,
        safetensors_max_abs_diff: Some(diff),
        onnx_max_abs_diff: None,
        warnings,
    })
}

/// The parity histories and the burn model's logits on them.
///
/// # Shapes
/// rows `[n, SEQ_OBS_DIM (+1 with the λ input)]` → logits `[n, 2]`
fn fixture(
    model: &SeqActorCritic,
    checkpoint: &Path,
    range: Option<[f64; 2]>,
) -> Result<SeqParity, ExportError> {
    let steps = parity_steps_in(range);
    let w = SEQ_OBS_DIM + usize::from(range.is_some());
    let mut rows = vec![0.0f32; steps.len() * w];
    for (s, row) in steps.iter().zip(rows.chunks_exact_mut(w)) {
        step_row(s, &mut row[..SEQ_OBS_DIM]).map_err(|e| ExportError::invalid(checkpoint, e))?;
        if let Some(l) = s.lambda {
            row[SEQ_OBS_DIM] = trim_env::features::lambda_feature(l as f32);
        }
    }
    let device = crate::backend::Backend::Flex.device()?;
    let n = steps.len();
    let x = Tensor::<2>::from_data(TensorData::new(rows, [n, w]), &device);
    let (logits, _) = model.forward(x);
    let v = (logits.into_data().convert::<f32>().try_into_vec::<f32>())
        .map_err(|e| ExportError::invalid(checkpoint, format!("burn forward failed: {e:?}")))?;
    Ok(SeqParity {
        tolerance: TOLERANCE,
        steps,
        logits: v.chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
    })
}

fn manifest(
    checkpoint: &Path,
    state: &TrainState,
    net: &SeqNet,
    evaluation: serde_json::Value,
    files: BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<SeqManifest, ExportError> {
    let [weak_models, strong_models, prm_models] = model_names(state, warnings);
    let params = (net.named_params().into_iter())
        .map(|(name, shape, _)| ParamSpec { name, shape })
        .collect();
    Ok(SeqManifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        kind: SEQ_EXPORT_KIND.into(),
        architecture: SeqArchitecture {
            kind: SEQ_KIND.into(),
            shape: net.shape(),
            seq_len: SEQ_LEN,
            token_dim: TOKEN_DIM,
            forward: vec![
                "tokens: the last seq_len−1 kept steps, then the candidate (no padding at inference)".into(),
                "h = embed(tokens)".into(),
                "per block i: h = h + blocks.i.o(causal_attention(blocks.i.q/k/v(LayerNorm_blocks.i.ln1(h)), heads)); h = h + blocks.i.ff2(relu(blocks.i.ff1(LayerNorm_blocks.i.ln2(h))))".into(),
                "attention: softmax(q·kᵀ/√(d/heads)) over positions ≤ the query's, per head; heads concatenated".into(),
                "z = LayerNorm_ln_f(h at the last token)".into(),
                "logits = actor_out(tanh(actor1(z))); value = critic_out(tanh(critic1(z))) — with the λ input (shape.lambda_input), z is followed by (log10(λ) + 3.5) / 1.5".into(),
            ],
            weight_layout: "PyTorch: Linear weight [out, in], y = x @ W.T + b; LayerNorm weight = gamma, bias = beta, biased variance, eps 1e-5 inside the sqrt".into(),
            params,
        },
        tokens: token_specs(),
        inputs: vec![
            "prev_prm, prev_tokens, prev_regenerated: every kept step's PRM score, token count and regenerated flag, in order".into(),
            "prm, tokens: the current weak candidate step".into(),
        ],
        actions: super::actions(),
        decision: super::network_decision(),
        lambda: state.config.lambda,
        lambda_range: state.config.lambda_range.bounds().map(|(lo, hi)| [lo, hi]),
        training: super::training(checkpoint, state, [weak_models, strong_models, prm_models])?,
        evaluation,
        files,
        calibration: None,
    })
}

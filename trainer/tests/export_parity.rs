//! `trim export` → `Router::load` / `trim route` / the Python reference router: every exported
//! format reproduces the burn model's logits within 1e-5, and damaged or mismatched exports
//! are refused with a clear error.
//!
//! The Python check (`scripts/python/check_parity.py`: numpy + safetensors and onnxruntime)
//! runs when a Python with those packages is found: `$TRIM_PYTHON`, else
//! `/root/.cache/trim-venv/bin/python`, else `python3`. Set `TRIM_REQUIRE_PYTHON=1` (CI does)
//! to make a missing Python a failure instead of a skip.

mod train_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use train_support::{make_dataset, ok, tmpdir, trim};
use trim::export::{self, ParityFixture};
use trim_env::checksum::sha256_hex;
use trim_router::{EpisodeFeatures, Router, StepObservation};

/// Train a tiny policy and export it in every format; returns (work dir, export dir).
fn trained_export(name: &str) -> (PathBuf, PathBuf) {
    let d = tmpdir(name);
    make_dataset(&d, "tiny", 60, 2, 7);
    ok(
        &d,
        &[
            "train",
            "--quiet",
            "--name",
            "r",
            "--data=tiny.jsonl",
            "--batch-episodes",
            "8",
            "--passes=2",
            "--val-every",
            "4",
            "--lr",
            "3e-3",
        ],
    );
    let out = ok(
        &d,
        &[
            "export",
            "--checkpoint",
            "checkpoints/r/best",
            "--format",
            "all",
            "--out",
            "exp",
        ],
    );
    assert!(out.contains("safetensors parity vs burn"), "{out}");
    assert!(out.contains("onnx parity vs burn"), "{out}");
    (d.clone(), d.join("exp"))
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn load_err(dir: &Path) -> String {
    match Router::load(dir) {
        Ok(_) => panic!("{} should be refused", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn python() -> Option<PathBuf> {
    train_support::python_with("numpy, safetensors, onnxruntime")
}

#[test]
fn exports_reproduce_the_burn_model_and_refuse_damage() {
    let (work, exp) = trained_export("export-parity");
    for f in [
        "policy.json",
        "policy.safetensors",
        "policy.onnx",
        "parity.json",
    ] {
        assert!(exp.join(f).is_file(), "{f} missing");
    }

    // Rust: the router rebuilt from policy.safetensors vs the burn model of the checkpoint,
    // on the fixed fixture and on fresh observations.
    let router = Router::load(&exp).expect("load export");
    let device = trim::backend::Backend::Flex.device().unwrap();
    let (model, state) =
        trim::checkpoint::load_model(&work.join("checkpoints/r/best"), &device).unwrap();
    let mut obs = export::parity_observations(trim_env::AGG_DIM);
    let mut rng = trim_env::Rng::new(99);
    for _ in 0..200 {
        obs.push((0..trim_env::AGG_DIM).map(|_| rng.f32()).collect());
    }
    let want = export::burn_logits(&model, &obs, &device).unwrap();
    let mut max = 0.0f32;
    for (o, w) in obs.iter().zip(&want) {
        let got = router.logits(o);
        for k in 0..2 {
            max = max.max((got[k] - w[k]).abs());
        }
    }
    eprintln!("rust safetensors parity: max |Δlogit| = {max:.3e}");
    assert!(max <= 1e-5, "{max}");
    // The policy is not constant (a parity check on a constant policy would prove little).
    let spread = want
        .iter()
        .map(|l| l[1] - l[0])
        .fold((f32::MAX, f32::MIN), |a, d| (a.0.min(d), a.1.max(d)));
    assert!(spread.1 - spread.0 > 1e-3, "{spread:?}");

    // Manifest content.
    let m = router.manifest().unwrap();
    assert_eq!(m.lambda, state.config.lambda);
    assert_eq!(m.training.dataset_sha256, state.dataset_sha256);
    assert_eq!(m.features.len(), 5);
    assert_eq!(m.features[0].name, "min_prev_prm");
    assert!(!m.training.weak_models.is_empty());
    assert!(m.evaluation.get("best").is_some(), "{}", m.evaluation);
    assert_eq!(m.architecture.params[0].shape, vec![64, 5]);

    // Batched = single; feature builder = manual features.
    let rows: Vec<trim_env::AggObs> = (obs.iter())
        .map(|o| o.as_slice().try_into().unwrap())
        .collect();
    let batch = router.decide_batch(&rows);
    for (o, d) in rows.iter().zip(&batch) {
        assert_eq!(*d, router.decide(o));
    }
    let step = StepObservation {
        id: None,
        prev_prm: vec![0.9, 0.4],
        prm: 0.6,
        tokens: 90,
        prev_tokens: vec![],
        prev_regenerated: vec![],
        lambda: None,
        budget: None,
        budget_left: None,
    };
    let manual = router.decide(&[0.4, 0.36, 0.6, 0.3, 2.0 / 30.0]);
    let built = router.decide_step(&step).unwrap();
    assert!((manual.p_regenerate - built.p_regenerate).abs() < 1e-6);
    let mut first = step.clone();
    first.prev_prm.clear();
    let many = router.decide_steps(&[step.clone(), first.clone()]).unwrap();
    assert_eq!(many[0], built);
    assert_eq!(many[1], router.decide_step(&first).unwrap());
    first.prm = f32::NAN;
    let e = router.decide_steps(&[step.clone(), first]).unwrap_err();
    assert!(e.starts_with("step 1:"), "{e}");
    let ep = EpisodeFeatures::from_history(&step.prev_prm).unwrap();
    assert_eq!(ep.steps(), 2);

    // `trim route` gives the same decisions as the library.
    std::fs::write(
        work.join("steps.jsonl"),
        "{\"id\":\"a\",\"prev_prm\":[0.9,0.4],\"prm\":0.6,\"tokens\":90}\n\n{\"prm\":0.1,\"tokens\":300}\n",
    )
    .unwrap();
    let out = ok(
        &work,
        &["route", "--export", "exp", "--input", "steps.jsonl"],
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["id"], "a");
    let p0 = lines[0]["p_regenerate"].as_f64().unwrap() as f32;
    assert!((p0 - built.p_regenerate).abs() < 1e-6);
    let want_action = if built.regenerate {
        "regenerate"
    } else {
        "continue"
    };
    assert_eq!(lines[0]["action"], want_action);
    let o = trim(
        &work,
        &["route", "--export", "exp", "--input", "missing.jsonl"],
    );
    assert!(!o.status.success());
    // A malformed line does not end a serving loop: it gets an error object (with the id when
    // one can be read) and the next line is still answered. `--strict` stops at it instead.
    let bad_lines: [&[u8]; 5] = [
        b"{\"id\":7,\"prm\":1.5,\"tokens\":3}\n",
        b"not json\n",
        b"{\"id\":8,\"prm\":0.5,\"tokens\":3,\"x\":1}\n",
        b"\xff\xfe\n",
        b"{\"id\":9,\"prm\":0.5,\"tokens\":3}\n",
    ];
    std::fs::write(work.join("bad.jsonl"), bad_lines.concat()).unwrap();
    let out = ok(&work, &["route", "--export", "exp", "--input", "bad.jsonl"]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(
        (lines[0]["id"].as_i64(), lines[0]["line"].as_i64()),
        (Some(7), Some(1))
    );
    assert!(
        lines[0]["error"].as_str().unwrap().contains("[0, 1]"),
        "{out}"
    );
    assert!(lines[1]["error"].is_string() && lines[1]["id"].is_null());
    assert_eq!(lines[2]["id"], 8);
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .contains("unknown field"),
        "{out}"
    );
    assert!(
        lines[3]["error"].as_str().unwrap().contains("UTF-8"),
        "{out}"
    );
    assert_eq!(lines[4]["id"], 9);
    assert!(lines[4]["action"].is_string(), "{out}");
    let o = trim(
        &work,
        &[
            "route",
            "--export",
            "exp",
            "--input",
            "bad.jsonl",
            "--strict",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("bad.jsonl:1") && err.contains("[0, 1]"),
        "{err}"
    );

    // The latency benchmark runs on the export (figures are measured in release builds).
    let out = ok(
        &work,
        &[
            "bench-route",
            "--export",
            "exp",
            "--iters",
            "2000",
            "--batch",
            "5000",
        ],
    );
    assert!(
        out.contains("single decision:") && out.contains("decisions/s"),
        "{out}"
    );

    // Damage: each is refused with an error naming the problem.
    let bad = work.join("bad");
    copy_dir(&exp, &bad);
    let mut st = std::fs::read(bad.join("policy.safetensors")).unwrap();
    let n = st.len();
    st[n - 3] ^= 0x40;
    std::fs::write(bad.join("policy.safetensors"), &st).unwrap();
    let e = load_err(&bad);
    assert!(
        e.contains("policy.safetensors") && e.contains("sha256"),
        "{e}"
    );

    copy_dir(&exp, &bad);
    let mut onnx = std::fs::read(bad.join("policy.onnx")).unwrap();
    onnx.truncate(onnx.len() / 2);
    std::fs::write(bad.join("policy.onnx"), &onnx).unwrap();
    let e = load_err(&bad);
    assert!(e.contains("policy.onnx") && e.contains("sha256"), "{e}");

    // Actor weights replaced with the checksum updated (a consistent but different file):
    // the parity fixture catches the mismatch.
    let mpath = bad.join("policy.json");
    copy_dir(&exp, &bad);
    let st = std::fs::read(bad.join("policy.safetensors")).unwrap();
    let hlen = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&st[8..8 + hlen]).unwrap();
    let b = header["actor_out.bias"]["data_offsets"][0]
        .as_u64()
        .unwrap() as usize
        + 8
        + hlen;
    let mut st2 = st.clone();
    st2[b..b + 4].copy_from_slice(&3.0f32.to_le_bytes());
    std::fs::write(bad.join("policy.safetensors"), &st2).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["files"]["policy.safetensors"] = sha256_hex(&st2).into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let e = load_err(&bad);
    assert!(e.contains("reproduce the exported logits"), "{e}");

    // An ONNX graph with a changed weight and an updated checksum: the Rust-side evaluation of
    // the graph catches it. actor_out.bias is the 14th initializer: find its raw bytes by
    // value (the bias values of the trained network are distinct floats).
    copy_dir(&exp, &bad);
    let mut onnx = std::fs::read(bad.join("policy.onnx")).unwrap();
    let router_b = router.net().named_params();
    let (_, _, bias) = router_b
        .iter()
        .find(|(n, _, _)| n == "actor_out.bias")
        .unwrap();
    let needle: Vec<u8> = bias.iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = onnx
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("actor_out.bias bytes in policy.onnx");
    onnx[at..at + 4].copy_from_slice(&5.0f32.to_le_bytes());
    std::fs::write(bad.join("policy.onnx"), &onnx).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["files"]["policy.onnx"] = sha256_hex(&onnx).into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let e = load_err(&bad);
    assert!(
        e.contains("policy.onnx") && e.contains("graph reproduces"),
        "{e}"
    );

    copy_dir(&exp, &bad);
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["format_version"] = 2.into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let e = load_err(&bad);
    assert!(
        e.contains("format_version") && e.contains("not supported"),
        "{e}"
    );

    copy_dir(&exp, &bad);
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["architecture"]["hidden"] = 32.into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let e = load_err(&bad);
    assert!(e.contains("shape"), "{e}");

    // A manifest whose decision threshold is not a probability, or whose width is beyond
    // what the router serves, is refused (not silently accepted, not a panic).
    for (field, value, msg) in [
        (
            "default_threshold",
            serde_json::json!(1.5),
            "default_threshold",
        ),
        (
            "default_threshold",
            serde_json::json!(-0.1),
            "default_threshold",
        ),
    ] {
        copy_dir(&exp, &bad);
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
        m["decision"][field] = value;
        std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
        let e = load_err(&bad);
        assert!(e.contains(msg) && e.contains("[0, 1]"), "{e}");
    }
    copy_dir(&exp, &bad);
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["architecture"]["hidden"] = 2048.into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let e = load_err(&bad);
    assert!(e.contains("hidden width 2048"), "{e}");

    copy_dir(&exp, &bad);
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["token_scale"] = 512.0.into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let e = load_err(&bad);
    assert!(e.contains("do not match this build"), "{e}");

    let e = load_err(&work.join("nowhere"));
    assert!(e.contains("trim export"), "{e}");

    // Re-exporting one format into the same directory removes the other one, and an
    // ONNX-only export is refused by the Rust router (it needs the safetensors) with a hint.
    let one = work.join("one");
    copy_dir(&exp, &one);
    ok(
        &work,
        &[
            "export",
            "--checkpoint",
            "checkpoints/r/best",
            "--format",
            "onnx",
            "--out",
            "one",
        ],
    );
    assert!(one.join("policy.onnx").is_file() && !one.join("policy.safetensors").exists());
    let e = load_err(&one);
    assert!(e.contains("--format safetensors or all"), "{e}");

    // Python: numpy + safetensors and onnxruntime reproduce the burn logits (parity.json).
    let fixture: ParityFixture =
        serde_json::from_str(&std::fs::read_to_string(exp.join("parity.json")).unwrap()).unwrap();
    assert_eq!(fixture.obs.len(), fixture.logits.len());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python/check_parity.py");
    match python() {
        Some(py) => {
            let o = Command::new(&py)
                .arg(&script)
                .arg(&exp)
                .arg("--require-onnx")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            eprintln!("python parity ({}):\n{text}", py.display());
            assert!(
                o.status.success(),
                "{text}\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                text.contains("ok   numpy") && text.contains("ok   onnx"),
                "{text}"
            );
            // And the Python router refuses a corrupted export, naming the checksum.
            let bad = work.join("bad-py");
            copy_dir(&exp, &bad);
            let mut st = std::fs::read(bad.join("policy.safetensors")).unwrap();
            let n = st.len();
            st[n - 1] ^= 0x01;
            std::fs::write(bad.join("policy.safetensors"), &st).unwrap();
            let o = Command::new(&py).arg(&script).arg(&bad).output().unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(!o.status.success() && text.contains("sha256"), "{text}");
        }
        None if std::env::var("TRIM_REQUIRE_PYTHON").as_deref() == Ok("1") => {
            panic!("TRIM_REQUIRE_PYTHON=1 but no python with numpy, safetensors, onnxruntime")
        }
        None => eprintln!("SKIPPED python parity: no python with numpy, safetensors, onnxruntime"),
    }
}

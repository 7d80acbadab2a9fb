//! `trim route --sessions` with a hard per-request budget of strong tokens.

mod train_support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use train_support::{tmpdir, train_and_export_tiny};

fn route(dir: &std::path::Path, lines: &[Value]) -> Vec<Value> {
    let mut p = Command::new(env!("CARGO_BIN_EXE_trim"))
        .args(["route", "--export", "exp", "--sessions"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for l in lines {
        input.push_str(&l.to_string());
        input.push('\n');
    }
    p.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn budgets_mask_regenerate_charge_strong_steps_and_are_refused_out_of_place() {
    let d = tmpdir("route-budget");
    train_and_export_tiny(&d);
    // Budget 0 never regenerates where the free session would; probabilities are the policy's.
    let mut lines = vec![];
    for k in 0..40 {
        let prm = k as f64 / 40.0;
        lines.push(json!({"session": format!("free{k}"), "prm": prm, "tokens": 80}));
        lines.push(json!({"session": format!("zero{k}"), "prm": prm, "tokens": 80, "budget": 0}));
    }
    let out = route(&d, &lines);
    let mut masked = 0;
    for pair in out.chunks(2) {
        let (free, zero) = (&pair[0], &pair[1]);
        assert_eq!(free["p_regenerate"], zero["p_regenerate"]);
        assert_eq!(zero["action"], "continue", "{zero}");
        assert!(free.get("budget_left").is_none(), "{free}");
        assert_eq!(
            (
                zero["budget_left"].as_u64(),
                zero["strong_max_tokens"].as_u64()
            ),
            (Some(0), Some(0))
        );
        masked += usize::from(free["action"] == "regenerate");
    }
    assert!(
        masked > 0,
        "the policy never regenerates: nothing was masked"
    );
    // Charging: a kept strong step, a discarded capped one, then a step over what is left.
    let s = |v: Value| {
        let mut v = v;
        v["session"] = json!("r");
        v
    };
    let out = route(
        &d,
        &[
            s(json!({"prm": 0.1, "tokens": 50, "budget": 100, "reserve": 5})),
            s(json!({"kept": {"prm": 0.9, "tokens": 60, "regenerated": true}})),
            s(json!({"prm": 0.2, "tokens": 40})),
            s(json!({"discarded": 38})),
            s(json!({"kept": {"prm": 0.2, "tokens": 40, "regenerated": false}})),
            s(json!({"prm": 0.1, "tokens": 40})),
            s(json!({"kept": {"prm": 0.9, "tokens": 3, "regenerated": true}})),
            s(json!({"prm": 0.1, "tokens": 40, "budget": 10})),
            s(json!({"discarded": 1, "prm": 0.2})),
        ],
    );
    assert_eq!(out[0]["strong_max_tokens"], 100);
    assert_eq!(out[1]["budget_left"], 40);
    assert_eq!(out[2]["strong_max_tokens"], 40);
    assert_eq!(out[3]["budget_left"], 2);
    assert_eq!(out[4]["budget_left"], 2);
    assert_eq!(
        out[5]["action"], "continue",
        "2 left is below the reserve of 5"
    );
    assert!(
        out[6]["error"]
            .as_str()
            .unwrap()
            .contains("exceeds the 2 left"),
        "{}",
        out[6]
    );
    assert!(
        out[7]["error"].as_str().unwrap().contains("first decision"),
        "{}",
        out[7]
    );
    assert!(
        out[8]["error"]
            .as_str()
            .unwrap()
            .contains("line of its own"),
        "{}",
        out[8]
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The Python serving helper (`scripts/python/trim_budget.py` with the numpy router) makes the
/// same budgeted decisions as `trim route --sessions`.
#[test]
fn python_budget_helper_matches_route_sessions() {
    let Some(py) = train_support::python_with("numpy,safetensors") else {
        assert!(
            std::env::var("TRIM_REQUIRE_PYTHON").is_err(),
            "TRIM_REQUIRE_PYTHON is set"
        );
        return;
    };
    let d = tmpdir("route-budget-py");
    train_and_export_tiny(&d);
    // One request of 25 steps: every regenerate keeps a 30-token strong step while it fits.
    let mut lines = vec![];
    let steps: Vec<(f64, u32)> = (0..25)
        .map(|k| ((k * 7 % 25) as f64 / 25.0, 40 + k))
        .collect();
    let rust = {
        let mut out = vec![];
        let mut left = 100u64;
        for (i, &(prm, tokens)) in steps.iter().enumerate() {
            let mut l = json!({"session": "s", "prm": prm, "tokens": tokens});
            if i == 0 {
                l["budget"] = json!(100);
            }
            lines.push(l.clone());
            let a = route(&d, &lines);
            let last = a.last().unwrap().clone();
            let regen = last["action"] == "regenerate";
            out.push(regen);
            let kept = if regen && left >= 30 {
                left -= 30;
                json!({"session": "s", "kept": {"prm": 0.9, "tokens": 30, "regenerated": true}})
            } else {
                if regen {
                    // The strong step hit the cap: discarded (charged), the weak step kept.
                    lines.push(json!({"session": "s", "discarded": left}));
                    left = 0;
                }
                json!({"session": "s", "kept": {"prm": prm, "tokens": tokens, "regenerated": false}})
            };
            lines.push(kept);
        }
        assert!(left < 100, "nothing was regenerated");
        out
    };
    let script = format!(
        "import sys, json\nsys.path.insert(0, {scripts:?})\nfrom trim_router import Router\nfrom trim_budget import Budget\n\
         r = Router('exp'); ep = r.episode(); b = Budget(100)\nout = []\n\
         for prm, tokens in {steps:?}:\n    d = r.decide(ep.observe(prm, tokens))\n    regen = b.allow(d.regenerate)\n\
         \x20   out.append(regen)\n    if regen and b.strong_max_tokens >= 30:\n        b.charge(30); ep.push(0.9)\n    else:\n        if regen:\n            b.discard(b.strong_max_tokens)\n        ep.push(prm)\n\
         print(json.dumps(out))\n",
        scripts = format!("{}/../scripts/python", env!("CARGO_MANIFEST_DIR")),
        steps = steps.iter().map(|&(p, t)| (p, t)).collect::<Vec<_>>(),
    );
    let o = Command::new(&py)
        .args(["-c", &script])
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let python: Vec<bool> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(python, rust, "Python and trim route disagree");
    std::fs::remove_dir_all(&d).unwrap();
}

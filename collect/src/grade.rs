//! Grading a generated solution against the reference answer, as the TRIM release grades
//! (trim-paper.md §6: extract the boxed answer, normalise it, compare): the last `\boxed{…}`
//! (or `\fbox{…}`) with balanced braces is the answer; both sides are normalised (LaTeX spacing
//! and sizing commands, `\dfrac`, `\text{…}` wrappers, degrees, percent and dollar signs,
//! thousands separators, a leading `x =`); they match when the normalised strings are equal,
//! when both are numbers (integers, decimals, fractions, `\frac{a}{b}`, mixed signs) within a
//! relative 1e-6, or when both are comma-separated lists whose items match in some order.
//!
//! This is the built-in grader; symbolic equivalence beyond these forms (e.g. `\sqrt{8}` vs
//! `2\sqrt{2}`) is what an external checker such as the `math-verify` package is for.

/// The grade of one solution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grade {
    /// The extracted final answer (None: no boxed answer — graded incorrect).
    pub extracted: Option<String>,
    pub correct: bool,
}

/// Grade `solution` (the full generated text) against `reference`.
pub fn grade(solution: &str, reference: &str) -> Grade {
    let extracted = extract_boxed(solution);
    let correct = extracted
        .as_deref()
        .is_some_and(|a| answers_match(a, reference));
    Grade { extracted, correct }
}

/// The content of the last `\boxed{…}` / `boxed{…}` / `\fbox{…}` with balanced braces.
pub fn extract_boxed(text: &str) -> Option<String> {
    let start = ["boxed{", "fbox{"]
        .iter()
        .filter_map(|m| text.rfind(m).map(|i| i + m.len()))
        .max()?;
    let mut depth = 1usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[start..start + i].trim().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Do two final answers match (see the module docs)?
pub fn answers_match(prediction: &str, reference: &str) -> bool {
    let (p, r) = (normalize(prediction), normalize(reference));
    if p == r {
        return true;
    }
    if let (Some(a), Some(b)) = (number(&p), number(&r)) {
        return (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    }
    let (ps, rs) = (items(&p), items(&r));
    if ps.len() > 1 && ps.len() == rs.len() {
        let mut used = vec![false; rs.len()];
        return ps.iter().all(|x| {
            let hit = (0..rs.len()).find(|&j| !used[j] && item_match(x, &rs[j]));
            hit.map(|j| used[j] = true).is_some()
        });
    }
    false
}

fn item_match(a: &str, b: &str) -> bool {
    a == b
        || matches!((number(a), number(b)), (Some(x), Some(y)) if (x - y).abs() <= 1e-6 * y.abs().max(1.0))
}

/// Top-level comma-separated items (commas inside braces or brackets do not split).
fn items(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (vec![], String::new(), 0i32);
    for c in s.chars() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The canonical form of an answer.
pub fn normalize(answer: &str) -> String {
    let mut s = answer.trim().trim_matches('$').to_string();
    for (from, to) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\displaystyle", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\$", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", ""),
    ] {
        s = s.replace(from, to);
    }
    for wrapper in ["\\text{", "\\textbf{", "\\mathrm{", "\\mbox{"] {
        s = unwrap_command(&s, wrapper);
    }
    let mut s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    while s.ends_with('.') {
        s.pop();
    }
    // `x=5` → `5` (a single variable on the left).
    if let Some((lhs, rhs)) = s.split_once('=')
        && lhs.len() == 1
        && lhs.chars().all(|c| c.is_ascii_alphabetic())
        && !rhs.contains('=')
    {
        s = rhs.to_string();
    }
    if is_thousands(&s) {
        s.retain(|c| c != ',');
    }
    s
}

/// Replace `\cmd{content}` by `content` everywhere.
fn unwrap_command(s: &str, cmd: &str) -> String {
    let mut out = s.to_string();
    while let Some(i) = out.find(cmd) {
        let start = i + cmd.len();
        let mut depth = 1usize;
        let mut end = None;
        for (j, c) in out[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(start + j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        out = format!("{}{}{}", &out[..i], &out[start..end], &out[end + 1..]);
    }
    out
}

/// `1,234` or `12,345,678`: digits in groups of three.
fn is_thousands(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let groups: Vec<&str> = body.split(',').collect();
    groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
}

/// A normalised answer as a number: an integer, a decimal, `a/b`, `\frac{a}{b}` or `\fracab`,
/// with an optional sign.
fn number(s: &str) -> Option<f64> {
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    let plain = |t: &str| -> Option<f64> {
        let t = t.trim_matches(|c| c == '{' || c == '}' || c == '(' || c == ')');
        (!t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .then(|| t.parse::<f64>().ok())
            .flatten()
    };
    if let Some(v) = plain(body) {
        return Some(sign * v);
    }
    if let Some(rest) = body.strip_prefix("\\frac") {
        let (a, b) = frac_args(rest)?;
        return Some(sign * plain(a)? / plain(b).filter(|d| *d != 0.0)?);
    }
    let (a, b) = body.split_once('/')?;
    Some(sign * plain(a)? / plain(b).filter(|d| *d != 0.0)?)
}

/// The two arguments of `\frac`: `{a}{b}`, or single characters `ab`.
fn frac_args(rest: &str) -> Option<(&str, &str)> {
    let arg = |t: &str| -> Option<(usize, usize)> {
        if t.starts_with('{') {
            let close = t.find('}')?;
            Some((1, close))
        } else {
            t.chars().next().map(|c| (0, c.len_utf8()))
        }
    };
    let (a0, a1) = arg(rest)?;
    let after = if rest.starts_with('{') { a1 + 1 } else { a1 };
    let tail = &rest[after..];
    let (b0, b1) = arg(tail)?;
    let end = if tail.starts_with('{') { b1 + 1 } else { b1 };
    (end == tail.len()).then_some((&rest[a0..a1], &tail[b0..b1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_balanced_boxed_answer_is_extracted() {
        assert_eq!(
            extract_boxed("so \\boxed{3} then \\boxed{\\frac{1}{2}}."),
            Some("\\frac{1}{2}".into())
        );
        assert_eq!(
            extract_boxed("The answer is $\\boxed{ 42 }$"),
            Some("42".into())
        );
        assert_eq!(extract_boxed("boxed{x^{2}+1}"), Some("x^{2}+1".into()));
        assert_eq!(extract_boxed("\\fbox{7}"), Some("7".into()));
        assert_eq!(extract_boxed("no answer here"), None);
        assert_eq!(extract_boxed("\\boxed{unbalanced"), None);
        assert_eq!(extract_boxed(""), None);
    }

    #[test]
    fn equivalent_forms_match_and_different_answers_do_not() {
        let yes = [
            ("\\frac{1}{2}", "0.5"),
            ("\\dfrac{1}{2}", "\\frac12"),
            ("1/2", "\\frac{1}{2}"),
            ("-\\frac{3}{4}", "-0.75"),
            ("1,000", "1000"),
            ("12,345,678", "12345678"),
            ("x = 5", "5"),
            ("90^\\circ", "90"),
            ("50\\%", "50"),
            ("\\$18.90", "18.9"),
            ("\\text{(B)}", "(B)"),
            ("\\left( 3, 4 \\right)", "(3,4)"),
            ("3, 1, 2", "1,2,3"),
            ("5.", "5"),
            ("10.0", "10"),
            ("2\\sqrt{2}", "2 \\sqrt{2}"),
        ];
        for (p, r) in yes {
            assert!(answers_match(p, r), "{p} should match {r}");
        }
        let no = [
            ("\\frac{1}{3}", "0.33"),
            ("1,2", "1,2,3"),
            ("2", "3"),
            ("\\sqrt{8}", "2\\sqrt{2}"),
            ("(3,4)", "(4,3)"),
            ("1/0", "1"),
            ("", "0"),
        ];
        for (p, r) in no {
            assert!(!answers_match(p, r), "{p} should not match {r}");
        }
    }

    #[test]
    fn solutions_are_graded_with_the_extracted_answer() {
        let g = grade(
            "Step 1 ...\n\nSo the answer is $\\boxed{\\dfrac{3}{6}}$.",
            "\\frac{1}{2}",
        );
        assert_eq!(
            g,
            Grade {
                extracted: Some("\\dfrac{3}{6}".into()),
                correct: true
            }
        );
        let g = grade("I give up.", "1");
        assert_eq!(
            g,
            Grade {
                extracted: None,
                correct: false
            }
        );
        // Damaged text never panics.
        for s in [
            "\\boxed{",
            "boxed{}}}",
            "\\boxed{\\frac{",
            "\\frac{}{}",
            "é\\boxed{é}",
        ] {
            let _ = grade(s, s);
        }
    }

    /// Fuzz-style: random strings of LaTeX-ish pieces (braces, commands, multi-byte characters)
    /// never panic, and an answer always matches itself once extracted.
    #[test]
    fn random_text_never_panics() {
        let pieces = [
            "\\boxed{", "{", "}", "\\frac", "1", "0", ",", "-", "/", "x=", "é", "∞", "\\text{",
            " ", "$", ".", "\\left(", "\\right)", "%", "^\\circ", "boxed{", "\\fbox{",
        ];
        let mut state = 0x9E3779B97F4A7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let n = (next() % 12) as usize;
            let text: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let g = grade(&text, &text);
            if let Some(a) = &g.extracted {
                assert!(answers_match(a, a), "{a:?}");
            }
        }
    }
}

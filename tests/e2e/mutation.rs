//! Mutation test over the example plans: deterministic, seeded mutations (byte flips, deleted,
//! duplicated and swapped lines, truncation, hostile tokens) of every `examples/**/plan.toml`
//! and `plans/*.toml`. Most go through the parser and the graph in-process (what `plan check`
//! does, rendering every diagnostic); a sample goes through the built `plan check`, which must
//! exit 0 or 1 (never panic: no 101, no "panicked"), and whose exit 1 must come with a
//! diagnostic at `file:line:col`.
//!
//! A failure names the seed and saves the mutated file under the system temp dir, so it can be
//! replayed with `plan check`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use plan_parser::{ParseOptions, parse_str};
use regex::Regex;

/// Mutated plans per original, in-process.
const IN_PROCESS_PER_PLAN: usize = 1_000;
/// Mutated plans run through the binary, in all.
const THROUGH_BINARY: usize = 200;

/// The plans that are mutated: every example plan and every plan under `plans/`, as paths
/// relative to the repository root.
fn originals() -> Vec<PathBuf> {
    let root = root();
    let mut found = Vec::new();
    for dir in ["plans", "examples"] {
        collect(&root.join(dir), &mut found);
    }
    found.retain(|p| {
        let rel = p.strip_prefix(&root).unwrap_or(p);
        let under_plans = rel.parent() == Some(Path::new("plans"));
        let example = rel.starts_with("examples") && p.file_name() == Some("plan.toml".as_ref());
        under_plans || example
    });
    found.sort();
    found
        .into_iter()
        .map(|p| p.strip_prefix(&root).map(Path::to_path_buf).unwrap_or(p))
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// splitmix64: a small deterministic generator, so a failing case is replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that have broken parsers before: TOML structure, the format's own syntax, numbers
/// past every integer type, NUL and bidi marks, includes that go nowhere.
const HOSTILE: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'''",
    "\"\"\"",
    "=",
    ",",
    ".",
    "\n",
    "\\",
    "\\u0000",
    "\0",
    "\u{202E}",
    "\u{200B}",
    "\u{FEFF}",
    "${",
    "$${",
    "${version}",
    "${nope}",
    "REGEX:(",
    "REGEX:^a.*$",
    "*",
    "[FILESRCIP]",
    "99999999999999999999",
    "-9223372036854775808",
    "1e400",
    "nan",
    "0x",
    "true",
    "[[push]]\n",
    "[plan]\n",
    "[vars]\n",
    "[hosts.x]\ngroups = [\"x\"]\n",
    "after = [\"",
    "include = [\"../nope.toml\"]\n",
    "hosts = \"",
    "0:[::1]",
    "999:10.0.0.1",
    "10.0.1.[1:40]",
    ".[40:1]",
    "10.0.2.0/28",
    "0.0.0.0/0",
    "host_id:",
    "host_id:1001",
    "C:\\",
    "/..",
    "é",
    "𝕏",
];

/// Applies 1 to 3 mutations to `text`.
fn mutate(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = text.to_vec();
    for _ in 0..1 + rng.below(3) {
        out = mutate_once(&out, rng);
    }
    out
}

fn mutate_once(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let join = |lines: &[Vec<u8>]| lines.join(&b'\n');
    match rng.below(8) {
        // flip one bit of one byte (may leave invalid UTF-8)
        0 if !text.is_empty() => {
            let mut out = text.to_vec();
            let i = rng.below(out.len());
            out[i] ^= 1 << rng.below(8);
            out
        }
        1 => {
            let i = rng.below(lines.len());
            lines.remove(i);
            join(&lines)
        }
        2 => {
            let i = rng.below(lines.len());
            let line = lines[i].clone();
            lines.insert(i, line);
            join(&lines)
        }
        3 => {
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
            join(&lines)
        }
        4 => text[..rng.below(text.len() + 1)].to_vec(),
        // replace one byte with a structural character
        5 if !text.is_empty() => {
            let mut out = text.to_vec();
            let i = rng.below(out.len());
            const STRUCTURE: &[u8] = b"[]{}=\"',.$\n#";
            out[i] = STRUCTURE[rng.below(STRUCTURE.len())];
            out
        }
        // insert a hostile token anywhere (may split a UTF-8 sequence)
        _ => {
            let token = HOSTILE[rng.below(HOSTILE.len())].as_bytes();
            let at = rng.below(text.len() + 1);
            let mut out = text[..at].to_vec();
            out.extend_from_slice(token);
            out.extend_from_slice(&text[at..]);
            out
        }
    }
}

/// Saves a failing input where it can be replayed, and says how.
fn keep(name: &str, seed: u64, bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("plan-mutant-{seed:016x}.toml"));
    let _ = std::fs::write(&path, bytes);
    format!(
        "mutant of {name} (seed {seed:#x}) saved to {}",
        path.display()
    )
}

/// Parse, build the graph and render every diagnostic, as `plan check` does.
fn check_in_process(path: &str, text: &str) {
    let render = |report: &dyn miette::Diagnostic| {
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, report)
            .map(|()| out)
    };
    match parse_str(path, text, &ParseOptions::default()) {
        Ok(parsed) => {
            match plan_graph::build(&parsed.plan) {
                Ok(graph) => {
                    for push in &parsed.plan.pushes {
                        let _ = plan_graph::request_for(&parsed.plan, push);
                    }
                    let _ = plan_graph::show_json(&parsed.plan, &graph, &parsed.warnings);
                }
                Err(errors) => {
                    assert!(errors.has_errors());
                    render(&errors).expect("render graph errors");
                }
            }
            for warning in &parsed.warnings {
                render(&warning.attach(&parsed.plan.sources)).expect("render warning");
            }
        }
        Err(errors) => {
            assert!(errors.has_errors(), "a failed parse holds an error");
            render(&errors).expect("render");
        }
    }
}

#[test]
fn mutated_example_plans_never_panic_the_parser_or_the_graph() {
    let originals = originals();
    assert!(originals.len() >= 5, "{originals:?}");
    let mut tried = 0;
    for (n, rel) in originals.iter().enumerate() {
        let text = std::fs::read(root().join(rel)).expect("plan");
        // The real path, so includes resolve as they do for the original.
        let path = root().join(rel).display().to_string();
        for i in 0..IN_PROCESS_PER_PLAN {
            let seed = ((n as u64) << 32) | i as u64;
            let mut rng = Rng(seed);
            let bytes = mutate(&text, &mut rng);
            let mutated = String::from_utf8_lossy(&bytes);
            let outcome = std::panic::catch_unwind(|| check_in_process(&path, &mutated));
            if outcome.is_err() {
                panic!("{}", keep(&rel.display().to_string(), seed, &bytes));
            }
            tried += 1;
        }
    }
    report("in-process", tried);
    assert_eq!(tried, originals.len() * IN_PROCESS_PER_PLAN);
}

static LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"mutant-\d+\.toml:\d+:\d+").expect("regex"));

#[test]
fn mutated_example_plans_through_plan_check_exit_0_or_1_with_located_diagnostics() {
    let originals = originals();
    // A copy of the plans' directories, so a mutant sits where its original's includes resolve.
    let dir = tempfile::tempdir().expect("tempdir");
    for rel in &originals {
        for sibling in std::fs::read_dir(root().join(rel).parent().expect("dir"))
            .expect("read dir")
            .flatten()
        {
            copy_tomls(&sibling.path(), dir.path(), &root());
        }
    }
    let (mut valid, mut invalid) = (0, 0);
    for i in 0..THROUGH_BINARY {
        let n = i % originals.len();
        let rel = &originals[n];
        let seed = 0xB1_0000_0000 | i as u64;
        let mut rng = Rng(seed);
        let bytes = mutate(&std::fs::read(root().join(rel)).expect("plan"), &mut rng);
        let at = dir
            .path()
            .join(rel.parent().expect("dir"))
            .join(format!("mutant-{i}.toml"));
        std::fs::write(&at, &bytes).expect("write mutant");
        let out = Command::new(env!("CARGO_BIN_EXE_plan"))
            .current_dir(dir.path())
            .arg("check")
            .arg(at.strip_prefix(dir.path()).expect("relative"))
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .output()
            .expect("run plan check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = || {
            format!(
                "{}\n{stderr}",
                keep(&rel.display().to_string(), seed, &bytes)
            )
        };
        assert!(!stderr.contains("panicked"), "{}", what());
        match out.status.code() {
            Some(0) => valid += 1,
            Some(1) => {
                invalid += 1;
                assert!(
                    LOCATION.is_match(&stderr),
                    "exit 1 without a file:line:col: {}",
                    what()
                );
            }
            other => panic!("exit {other:?}: {}", what()),
        }
    }
    report(
        &format!("plan check: {valid} exit 0, {invalid} exit 1"),
        valid + invalid,
    );
    // Most mutants break the plan, but not all: both outcomes are exercised.
    assert!(
        invalid > valid && valid > 0,
        "{valid} valid, {invalid} invalid"
    );
}

/// Copies `path` (a file or a directory) to the same place under `to`, `.toml` files only.
fn copy_tomls(path: &Path, to: &Path, root: &Path) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir").flatten() {
            copy_tomls(&entry.path(), to, root);
        }
    } else if path.extension().is_some_and(|e| e == "toml") {
        let rel = path.strip_prefix(root).expect("under root");
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("dir")).expect("mkdir");
        std::fs::copy(path, dest).expect("copy");
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the count of inputs tried is the test's figure"
)]
fn report(how: &str, tried: usize) {
    eprintln!("mutation ({how}): {tried} mutated plans tried");
}

/// The hostile values of `crates/parser/tests/it/hostile.rs` through the built binary: each
/// is exit 1 with its diagnostic at `file:line:col`, and nothing panics (a label past column
/// 65,535 used to crash the renderer).
#[test]
fn hostile_plans_through_plan_check_exit_1_at_the_right_place() {
    let head = "[plan]\nname = \"h\"\nbk_biz_id = 1\naccount = \"root\"\n";
    let push = "[[push]]\nname = \"a\"\nfrom = { hosts = \"10.0.0.1\", files = [\"/a\"] }\nto = { hosts = \"10.0.0.2\", path = \"/b/\" }\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "far-column",
            format!("{head}{push}after = [{}\"zz\"]\n", " ".repeat(100_000)).into_bytes(),
            ":9:100010",
        ),
        (
            "nul-path",
            format!("{head}{}", push.replace("\"/a\"", "\"/a\\u0000\"")).into_bytes(),
            ":7:39",
        ),
        (
            "bidi-name",
            format!(
                "{head}{}",
                push.replace("name = \"a\"", "name = \"a\u{202E}b\"")
            )
            .into_bytes(),
            ":6:8",
        ),
        (
            "not-utf8",
            [
                format!("{head}{push}description = \"").as_bytes(),
                b"\xc4\xe3\"\n",
            ]
            .concat(),
            ":9:16",
        ),
        (
            "huge-int",
            format!("{head}timeout = 99999999999999999999\n{push}").into_bytes(),
            ":5:11",
        ),
        (
            "deep-nesting",
            format!(
                "{head}x = {}{}\n{push}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            )
            .into_bytes(),
            ":5:",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes, at) in cases {
        let file = format!("{name}.toml");
        std::fs::write(dir.path().join(&file), &bytes).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_plan"))
            .current_dir(dir.path())
            .args(["check", &file])
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .output()
            .expect("run plan check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let short: String = stderr.chars().take(3000).collect();
        assert_eq!(out.status.code(), Some(1), "{name}: {short}");
        assert!(!stderr.contains("panicked"), "{name}: {short}");
        assert!(
            stderr.contains(&format!("{file}{at}")),
            "{name}: no `{file}{at}` in {short}"
        );
    }
}

//! Arbitrary input never panics: random text, and valid plans mangled the ways editors and
//! merges mangle them (truncation, deleted or duplicated lines, swapped characters).

use std::path::Path;

use plan_parser::{ParseOptions, parse_str};
use proptest::prelude::*;

fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/plans");
    let mut seeds = Vec::new();
    for dir in ["valid", "invalid", "warnings"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "toml") {
                seeds.push(std::fs::read_to_string(entry.path()).expect("fixture"));
            }
        }
    }
    seeds.sort();
    seeds
}

/// Parses and renders: rendering must not panic either (spans must stay inside the text).
fn check(text: &str) {
    // A name with a directory so relative includes resolve into the fixture tree.
    let name = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/plans/valid/fuzz.toml"
    );
    match parse_str(name, text, &ParseOptions::default()) {
        Ok(parsed) => {
            for report in plan_parser::reports(&parsed.plan.sources, &parsed.warnings) {
                let _ = format!("{report:?}");
            }
        }
        Err(errors) => {
            let mut out = String::new();
            let handler = miette::GraphicalReportHandler::new_themed(
                miette::GraphicalTheme::unicode_nocolor(),
            );
            handler.render_report(&mut out, &errors).expect("render");
            assert!(errors.has_errors(), "a failed parse must hold an error");
        }
    }
}

#[derive(Debug, Clone)]
enum Mangle {
    Truncate(usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    Swap(usize),
    Insert(usize, char),
}

fn mangle(text: &str, how: &Mangle) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let chars: Vec<char> = text.chars().collect();
    match *how {
        Mangle::Truncate(i) => chars[..i % (chars.len() + 1)].iter().collect(),
        Mangle::DeleteLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            lines
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != i)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Mangle::DuplicateLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            let mut out = lines.clone();
            out.insert(i, lines[i]);
            out.join("\n")
        }
        Mangle::Swap(i) if chars.len() >= 2 => {
            let i = i % (chars.len() - 1);
            let mut c = chars.clone();
            c.swap(i, i + 1);
            c.into_iter().collect()
        }
        Mangle::Insert(i, ch) => {
            let mut c = chars.clone();
            c.insert(i % (chars.len() + 1), ch);
            c.into_iter().collect()
        }
        _ => text.to_owned(),
    }
}

fn mangles() -> impl Strategy<Value = Vec<Mangle>> {
    let one = prop_oneof![
        any::<usize>().prop_map(Mangle::Truncate),
        any::<usize>().prop_map(Mangle::DeleteLine),
        any::<usize>().prop_map(Mangle::DuplicateLine),
        any::<usize>().prop_map(Mangle::Swap),
        (
            any::<usize>(),
            prop::sample::select(vec![
                '"', '[', ']', '{', '}', '=', '\n', '$', ',', 'é', '\\', ':'
            ])
        )
            .prop_map(|(i, c)| Mangle::Insert(i, c)),
    ];
    prop::collection::vec(one, 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        check(&text);
    }

    #[test]
    fn random_toml_ish_text_never_panics(text in "[\\[\\]{}=\",. a-z0-9_\\n$:/-]{0,300}") {
        check(&text);
    }

    #[test]
    fn mangled_plans_never_panic(seed in any::<prop::sample::Index>(), how in mangles()) {
        let seeds = seeds();
        let mut text = seeds[seed.index(seeds.len())].clone();
        for m in &how {
            text = mangle(&text, m);
        }
        check(&text);
    }
}

#[test]
fn deep_group_chains_do_not_overflow() {
    let mut text = String::from("[plan]\nname = \"deep\"\nbk_biz_id = 1\naccount = \"root\"\n");
    let n = 20_000;
    for i in 0..n {
        text.push_str(&format!("[hosts.g{i}]\ngroups = [\"g{}\"]\n", i + 1));
    }
    text.push_str(&format!("[hosts.g{n}]\nips = [\"10.0.0.1\"]\n"));
    text.push_str("[[push]]\nname = \"a\"\nfrom = { hosts = \"g0\", files = [\"/a\"] }\nto = { hosts = \"g0\", path = \"/b/\" }\n");
    let parsed = parse_str("deep.toml", &text, &ParseOptions::default()).expect("valid");
    assert_eq!(parsed.plan.groups["g0"].hosts.ips.len(), 1);
}

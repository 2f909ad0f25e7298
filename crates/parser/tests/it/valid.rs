//! Valid plans parse, and the model holds what they say.

use std::path::{Path, PathBuf};

use plan_parser::{ApiVersion, HostRef, Origin, ParseOptions, parse_file};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_valid_fixture_parses() {
    let dir = root().join("tests/fixtures/plans/valid");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        count += 1;
        if let Err(errors) = parse_file(&path, &ParseOptions::default()) {
            panic!("{} should be valid:\n{}", path.display(), render(&errors));
        }
    }
    assert!(count >= 3, "expected valid fixtures in {}", dir.display());
}

#[test]
fn realistic_plans_parse() {
    for name in ["release.toml", "logs.toml", "windows.toml"] {
        let path = root().join("plans").join(name);
        if let Err(errors) = parse_file(&path, &ParseOptions::default()) {
            panic!("{name} should be valid:\n{}", render(&errors));
        }
    }
}

pub(crate) fn render(errors: &plan_parser::PlanErrors) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(80);
    handler.render_report(&mut out, errors).expect("render");
    out
}

#[test]
fn release_plan_model() {
    let parsed =
        parse_file(&root().join("plans/release.toml"), &ParseOptions::default()).expect("valid");
    let plan = &parsed.plan;
    assert_eq!(plan.name.value, "release-1-4");
    assert_eq!(plan.bk_biz_id.value, 2);
    assert_eq!(plan.api, ApiVersion::V2);
    assert_eq!(plan.pushes.len(), 3);
    let first = &plan.pushes[0];
    assert_eq!(
        first.sources[0].files[0].path,
        "/data/release/app-1.4.2.tar.gz"
    );
    assert_eq!(first.target.account.value, "root");
    assert_eq!(first.target.account.origin, Origin::Plan);
    assert_eq!(first.timeout.as_ref().map(|t| t.value), Some(600));
    let second = &plan.pushes[1];
    assert_eq!(second.target.account.origin, Origin::Push);
    assert_eq!(
        second.timeout.as_ref().map(|t| (t.value, t.origin)),
        Some((1800, Origin::Push))
    );
    assert!(matches!(second.target.host_refs[1], HostRef::Host(_)));
    let ips: Vec<String> = second
        .target
        .hosts
        .ips
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ips, ["0:10.0.9.9"]);
    assert_eq!(second.target.hosts.dynamic_groups, ["blo8gojho0skft7pr5q0"]);
    let edge = &plan.groups["edge"].hosts;
    assert_eq!(edge.ips.len(), 2);
    assert_eq!(edge.topo_nodes.len(), 2);
    // the included inventory is the second file, and group spans point into it
    assert_eq!(plan.sources.len(), 2);
    assert_eq!(plan.groups["build"].span.file, plan_parser::FileId(1));
    // relays-to-web reads from two relays into one directory: the spec's own warning
    let codes: Vec<&str> = parsed.warnings.iter().map(|w| w.code()).collect();
    assert_eq!(codes, ["plan::parser::overwriting_copies"]);
}

#[test]
fn var_overrides_and_api_override() {
    let options = ParseOptions {
        vars: vec![("version".into(), "2.0.0".into())],
        api: Some(ApiVersion::V3),
    };
    let parsed = parse_file(&root().join("plans/release.toml"), &options).expect("valid");
    assert_eq!(parsed.plan.api, ApiVersion::V3);
    assert_eq!(
        parsed.plan.pushes[0].sources[0].files[0].path,
        "/data/release/app-2.0.0.tar.gz"
    );
    assert_eq!(parsed.plan.vars["version"], "2.0.0");
}

#[test]
fn group_hosts_follow_the_written_order() {
    let path = root().join("tests/fixtures/plans/valid/group_order.toml");
    let parsed = parse_file(&path, &ParseOptions::default()).expect("valid");
    let shown = |push: &str| {
        let hosts = &parsed.plan.push(push).expect("push").target.hosts;
        (
            hosts.ips.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            hosts.dynamic_groups.clone(),
        )
    };
    // `groups = ["web"]` comes before `ips` and `dynamic_groups` in [hosts.edge]
    assert_eq!(
        shown("to-edge"),
        (
            vec![
                "0:10.0.1.1".to_owned(),
                "0:10.0.1.2".to_owned(),
                "0:10.0.9.9".to_owned()
            ],
            vec!["dg-web".to_owned(), "dg-edge".to_owned()]
        )
    );
    // [hosts.core] writes its own `ips` first
    assert_eq!(
        shown("to-core"),
        (
            vec![
                "0:10.0.9.9".to_owned(),
                "0:10.0.1.1".to_owned(),
                "0:10.0.1.2".to_owned()
            ],
            vec!["dg-web".to_owned()]
        )
    );
}

#[test]
fn filesrcip_keeps_same_name_copies_from_different_hosts_apart() {
    let path = root().join("tests/fixtures/plans/valid/filesrcip_sources.toml");
    let parsed = parse_file(&path, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("should be valid:\n{}", render(&e)));
    assert_eq!(parsed.plan.pushes[0].sources.len(), 2);
}

/// A set that starts with a range checks later hosts against the range (not by hashing it):
/// the hosts, their order and the warnings are the same as for any other set.
#[test]
fn hosts_after_a_first_range_are_deduplicated_in_order() {
    let text = r#"
[plan]
name = "p"
bk_biz_id = 1
account = "root"

[hosts.web]
ips = ["10.0.2.0/29", "10.0.2.3", "10.0.3.1", "1:10.0.2.4", "10.0.3.1", "10.0.2.[5:8]", "10.0.3.2"]

[[push]]
name = "a"
from = { hosts = "10.0.0.1", files = ["/data/a.tgz"] }
to = { hosts = ["10.0.2.[1:2]", "10.0.2.2", "10.0.9.9", "10.0.2.1", "web"], path = "/data/" }
"#;
    let parsed = plan_parser::parse_str("p.toml", text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{}", render(&e)));
    let shown = |hosts: &[plan_parser::HostAddr]| -> Vec<String> {
        hosts.iter().map(ToString::to_string).collect()
    };
    let group = &parsed.plan.groups["web"].hosts.ips;
    assert_eq!(
        shown(group),
        [
            "0:10.0.2.1",
            "0:10.0.2.2",
            "0:10.0.2.3",
            "0:10.0.2.4",
            "0:10.0.2.5",
            "0:10.0.2.6",
            "0:10.0.3.1",
            "1:10.0.2.4",
            "0:10.0.2.7",
            "0:10.0.2.8",
            "0:10.0.3.2"
        ]
    );
    let target = &parsed.plan.pushes[0].target.hosts.ips;
    assert_eq!(
        shown(&target[..3]),
        ["0:10.0.2.1", "0:10.0.2.2", "0:10.0.9.9"]
    );
    assert_eq!(target.len(), 3 + group.len() - 2);
    let repeated: Vec<&str> = parsed
        .warnings
        .iter()
        .filter(|w| w.code() == "plan::parser::duplicate_host")
        .map(|w| w.message())
        .collect();
    assert_eq!(repeated.len(), 5, "{repeated:#?}");
}

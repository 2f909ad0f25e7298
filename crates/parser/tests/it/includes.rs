//! An include that cannot be read is the one problem reported: the groups and variables it
//! would have defined are not reported unknown at each use.

use plan_parser::{ParseOptions, parse_file};

const PLAN: &str = r#"include = ["inventory/prod.toml"]
[plan]
name = "p"
bk_biz_id = 1
account = "root"

[[push]]
name = "a"
from = { hosts = "build", files = ["/data/${version}/a.tgz"] }
to = { hosts = "web", path = "/data/" }

[[push]]
name = "b"
from = { hosts = "build", files = ["/data/b.tgz"] }
to = { hosts = ["web", "db"], path = "/data/" }
"#;

#[test]
fn a_missing_include_is_one_error_at_its_entry_not_a_cascade_of_unknown_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("p.toml");
    std::fs::write(&plan, PLAN).expect("write plan");
    let errors = parse_file(&plan, &ParseOptions::default()).expect_err("invalid");
    let codes: Vec<&str> = errors.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["plan::parser::include_unreadable"], "{errors:?}");
    let problem = &errors.problems()[0];
    assert!(
        problem.message().contains("inventory/prod.toml"),
        "{}",
        problem.message()
    );
    let span = problem
        .primary_span()
        .expect("labelled at the include entry");
    assert_eq!(
        &PLAN[span.start..span.start + span.len],
        "\"inventory/prod.toml\""
    );
}

#[test]
fn with_the_include_present_the_same_plan_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("p.toml");
    std::fs::write(&plan, PLAN).expect("write plan");
    std::fs::create_dir(dir.path().join("inventory")).expect("dir");
    std::fs::write(
        dir.path().join("inventory/prod.toml"),
        "[vars]\nversion = \"1.0\"\n[hosts.build]\nips = [\"10.0.0.1\"]\n[hosts.web]\nips = [\"10.0.1.1\"]\n[hosts.db]\nips = [\"10.0.2.1\"]\n",
    )
    .expect("write include");
    parse_file(&plan, &ParseOptions::default()).expect("valid with its inventory");
}

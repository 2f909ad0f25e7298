//! The release keys of a push (`rolling`, `gate`, `verify`, `callback_url`): what a valid plan
//! holds, and each mistake a diagnostic at its key (inside the expression for a bad part).

use plan_parser::{
    MaxFailed, ParseOptions, Parsed, PlanErrors, RollingMode, RollingOver, Severity, Verify,
    parse_str,
};

fn plan(api: &str, push_keys: &str, target: &str, files: &str) -> String {
    format!(
        "[plan]\nname = \"r\"\nbk_biz_id = 1\naccount = \"root\"\napi = \"{api}\"\n\n[[push]]\nname = \"app\"\nfrom = {{ hosts = \"10.0.0.1\", files = [{files}] }}\nto = {{ hosts = {target}, path = \"/srv/\" }}\n{push_keys}\n"
    )
}

fn parse(text: &str) -> Result<Parsed, PlanErrors> {
    parse_str("r.toml", text, &ParseOptions::default())
}

/// `(code, the text the first label covers)` of every error.
fn errors(text: &str) -> Vec<(&'static str, String)> {
    let errors = parse(text).expect_err("the plan must be invalid");
    errors
        .problems()
        .iter()
        .filter(|p| p.severity() == Severity::Error)
        .map(|p| {
            let span = p.primary_span().expect("a label");
            (p.code(), text[span.start..span.start + span.len].to_owned())
        })
        .collect()
}

const TWENTY: &str = "\"10.0.1.[1:20]\"";
const ONE_FILE: &str = "\"/data/app.tar.gz\"";

#[test]
fn a_rolling_push_carries_its_expression_mode_and_batches() {
    let text = plan(
        "v3",
        "rolling = { expression = \"1 30% 100%\", mode = \"manual\" }\ngate = true\nverify = \"sha256\"\ncallback_url = \"https://ci.example.com/hook\"",
        TWENTY,
        ONE_FILE,
    );
    let parsed = parse(&text).expect("valid");
    let push = &parsed.plan.pushes[0];
    let rolling = push.release.rolling.as_ref().expect("rolling");
    assert_eq!(rolling.mode, RollingMode::Manual);
    assert!(
        matches!(&rolling.over, RollingOver::Targets { expression, .. } if expression.value == "1 30% 100%")
    );
    assert_eq!(rolling.target_batches(20), Some(vec![1, 6, 13]));
    assert!(push.release.gate.is_some());
    assert_eq!(
        push.release.verify.as_ref().map(|v| v.value),
        Some(Verify::Sha256)
    );
    assert_eq!(
        push.release.callback_url.as_ref().map(|c| c.value.as_str()),
        Some("https://ci.example.com/hook")
    );
}

#[test]
fn the_plan_callback_url_is_inherited_and_the_default_mode_pauses_on_failure() {
    let text = plan(
        "v2",
        "rolling = { expression = \"5\", max_failed = \"10%\" }",
        TWENTY,
        ONE_FILE,
    )
    .replace(
        "api = \"v2\"",
        "api = \"v2\"\ncallback_url = \"http://hooks.example/job\"",
    );
    let parsed = parse(&text).expect("valid");
    let release = &parsed.plan.pushes[0].release;
    let rolling = release.rolling.as_ref().expect("rolling");
    assert_eq!(rolling.mode, RollingMode::PauseOnFailure);
    assert_eq!(
        rolling.max_failed.as_ref().map(|m| m.value),
        Some(MaxFailed::Percent(10))
    );
    assert_eq!(
        release
            .callback_url
            .as_ref()
            .map(|c| (c.value.as_str(), c.origin)),
        Some(("http://hooks.example/job", plan_parser::Origin::Plan))
    );
}

#[test]
fn max_failed_counts_hosts_or_a_share() {
    assert!(!MaxFailed::Hosts(2).exceeded(2, 20));
    assert!(MaxFailed::Hosts(2).exceeded(3, 20));
    assert!(!MaxFailed::Percent(10).exceeded(2, 20));
    assert!(MaxFailed::Percent(10).exceeded(3, 20));
    assert!(MaxFailed::Hosts(0).exceeded(1, 20));
}

#[test]
fn a_part_job_refuses_is_reported_inside_the_expression() {
    let text = plan(
        "v3",
        "rolling = { expression = \"1 0% 100%\" }",
        TWENTY,
        ONE_FILE,
    );
    assert_eq!(
        errors(&text),
        vec![("plan::parser::invalid_rolling", "0%".to_owned())]
    );
    let text = plan(
        "v3",
        "rolling = { expression = \"1 ten\" }",
        TWENTY,
        ONE_FILE,
    );
    assert_eq!(
        errors(&text),
        vec![("plan::parser::invalid_rolling", "ten".to_owned())]
    );
    let text = plan("v3", "rolling = { expression = \"  \" }", TWENTY, ONE_FILE);
    assert_eq!(errors(&text)[0].0, "plan::parser::invalid_rolling");
}

#[test]
fn too_many_batches_for_the_static_targets_is_an_error() {
    let text = plan(
        "v3",
        "rolling = { expression = \"1\" }",
        "\"10.0.[0:3].[1:254]\"",
        ONE_FILE,
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0],
        ("plan::parser::invalid_rolling", "\"1\"".to_owned())
    );
}

#[test]
fn bad_modes_keys_and_combinations_are_each_a_diagnostic_at_the_key() {
    let bad_mode = plan(
        "v3",
        "rolling = { expression = \"1\", mode = \"serial\" }",
        TWENTY,
        ONE_FILE,
    );
    assert_eq!(
        errors(&bad_mode),
        vec![("plan::parser::invalid_rolling", "\"serial\"".to_owned())]
    );
    let both = plan(
        "v3",
        "rolling = { expression = \"1\", sources_per_batch = 2 }",
        TWENTY,
        ONE_FILE,
    );
    assert_eq!(errors(&both)[0].0, "plan::parser::conflicting_keys");
    let neither = plan("v3", "rolling = { mode = \"manual\" }", TWENTY, ONE_FILE);
    assert_eq!(errors(&neither)[0].0, "plan::parser::invalid_rolling");
    let typo = plan("v3", "rolling = { expresion = \"1\" }", TWENTY, ONE_FILE);
    assert!(
        errors(&typo)
            .iter()
            .any(|(code, at)| *code == "plan::parser::unknown_key" && at == "expresion")
    );
    let sources_v2 = plan(
        "v2",
        "rolling = { sources_per_batch = 1 }",
        TWENTY,
        ONE_FILE,
    );
    assert_eq!(
        errors(&sources_v2),
        vec![("plan::parser::v3_only", "1".to_owned())]
    );
    let bad_max = plan(
        "v2",
        "rolling = { expression = \"1\", max_failed = \"110%\" }",
        TWENTY,
        ONE_FILE,
    );
    assert_eq!(
        errors(&bad_max),
        vec![("plan::parser::out_of_range", "\"110%\"".to_owned())]
    );
}

#[test]
fn v2_rolling_over_a_dynamic_group_needs_static_hosts() {
    let text = plan("v2", "rolling = { expression = \"2\" }", TWENTY, ONE_FILE)
        .replace(&format!("hosts = {TWENTY}"), "hosts = \"web\"")
        + "\n[hosts.web]\ndynamic_groups = [\"dg-1\"]\n";
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "plan::parser::rolling_needs_static_hosts");
    // Under v3 JOB resolves the group and rolls over it.
    parse(&text.replace("api = \"v2\"", "api = \"v3\"")).expect("valid under v3");
}

#[test]
fn sha256_needs_named_files() {
    for (files, at) in [
        ("\"/data/REGEX:^app.*$\"", "\"/data/REGEX:^app.*$\""),
        ("\"/data/*.tar.gz\"", "\"/data/*.tar.gz\""),
        ("\"/data/dist/\"", "\"/data/dist/\""),
    ] {
        let text = plan("v3", "verify = \"sha256\"", TWENTY, files);
        assert_eq!(
            errors(&text),
            vec![("plan::parser::invalid_verify", at.to_owned())],
            "{files}"
        );
        parse(&plan("v3", "verify = \"size\"", TWENTY, files)).expect("size reads JOB's log");
    }
    let text = plan("v3", "verify = \"md5\"", TWENTY, ONE_FILE);
    assert_eq!(
        errors(&text),
        vec![("plan::parser::invalid_verify", "\"md5\"".to_owned())]
    );
}

#[test]
fn a_gate_on_a_disabled_push_and_bad_callbacks_are_refused() {
    let text = plan("v3", "gate = true\nenabled = false", TWENTY, ONE_FILE);
    assert_eq!(
        errors(&text),
        vec![("plan::parser::unapprovable_gate", "true".to_owned())]
    );
    let text = plan("v3", "callback_url = \"ftp://x\"", TWENTY, ONE_FILE);
    assert_eq!(errors(&text)[0].0, "plan::parser::out_of_range");
    let text = plan(
        "v3",
        "callback_url = \"https://user:pw@ci.example.com/\"",
        TWENTY,
        ONE_FILE,
    );
    let errors_found = parse(&text).expect_err("invalid");
    assert_eq!(
        errors_found.problems()[0].code(),
        "plan::parser::credential_in_plan"
    );
}

/// A megabyte-long expression (200,000 parts) over 65,536 targets is refused in linear time
/// (more batches than JOB allows) and a stray part at its end is pointed at, without a panic.
#[test]
fn huge_expressions_end_quickly_with_a_diagnostic() {
    let started = std::time::Instant::now();
    let parts = "1 ".repeat(200_000);
    let text = plan(
        "v3",
        &format!("rolling = {{ expression = \"{parts}\" }}"),
        "\"10.0.0.0/16\"",
        ONE_FILE,
    );
    assert_eq!(errors(&text)[0].0, "plan::parser::invalid_rolling");
    let text = plan(
        "v3",
        &format!("rolling = {{ expression = \"{parts}x\" }}"),
        "\"10.0.0.0/16\"",
        ONE_FILE,
    );
    assert_eq!(
        errors(&text),
        vec![("plan::parser::invalid_rolling", "x".to_owned())]
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

//! Diffs of realistic plan edits, read from TOML like users write them.

use plan_parser::{ParseOptions, Parsed};

use super::*;
use crate::build;

const BASE: &str = r#"
[plan]
name = "rel"
bk_biz_id = 2
account = "root"

[vars]
version = "1.4.2"

[hosts.build]
ips = ["10.0.0.5"]
[hosts.relay]
ips = ["0:10.0.1.1", "0:10.0.1.2"]
[hosts.web]
ips = ["0:10.0.3.1", "0:10.0.3.2"]

[[push]]
name = "artifact"
from = { hosts = "build", files = ["/data/release/app-${version}.tar.gz"] }
to = { hosts = "relay", path = "/data/stage/" }

[[push]]
name = "to-web"
from = { hosts = "relay", files = ["/data/stage/app-${version}.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }

[[push]]
name = "configs"
after = ["to-web"]
from = { hosts = "build", files = ["/etc/app/app.conf"] }
to = { hosts = "web", path = "/etc/app/" }
"#;

fn parse(text: &str) -> (Parsed, PlanGraph) {
    let parsed = plan_parser::parse_str("plan.toml", text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("plan should parse: {:?}", e.problems()));
    let graph = build(&parsed.plan).unwrap_or_else(|_| panic!("plan should order"));
    (parsed, graph)
}

fn run(old: &str, new: &str) -> PlanDiff {
    let (o, og) = parse(old);
    let (n, ng) = parse(new);
    diff(
        Some(DiffSide {
            plan: &o.plan,
            graph: &og,
            warnings: &o.warnings,
        }),
        DiffSide {
            plan: &n.plan,
            graph: &ng,
            warnings: &n.warnings,
        },
    )
}

fn field<'d>(push: &'d ChangedPush, path: &str) -> &'d FieldChange {
    push.fields
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no change at {path} in {:?}", push.fields))
}

#[test]
fn identical_plans_have_no_changes() {
    let d = run(BASE, BASE);
    assert!(!d.has_changes());
    assert_eq!(d.summary(), "no changes");
    assert!(d.attention.is_empty());
}

#[test]
fn a_host_added_to_a_group_changes_every_push_that_targets_it() {
    let new = BASE.replace(
        r#"ips = ["0:10.0.3.1", "0:10.0.3.2"]"#,
        r#"ips = ["0:10.0.3.1", "0:10.0.3.2", "0:10.0.3.9"]"#,
    );
    let d = run(BASE, &new);
    let names: Vec<&str> = d.changed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["to-web", "configs"]);
    for c in &d.changed {
        assert_eq!(
            field(c, "target_server.ip_list").to_string(),
            "target_server.ip_list: +0:10.0.3.9"
        );
        assert_eq!(c.fields.len(), 1, "{:?}", c.fields);
        assert_eq!(
            c.causes,
            [Cause::Group {
                name: "web".into(),
                file: Some("plan.toml".into())
            }]
        );
        assert!(c.targets.widened());
    }
    assert_eq!(d.groups.len(), 1);
    assert_eq!(d.groups[0].hosts.items(), ["+0:10.0.3.9"]);
    assert_eq!(
        d.summary(),
        "~2 changed; targets +1 host; 1 host group changed"
    );
    let widened: Vec<&Attention> = d
        .attention
        .iter()
        .filter(|a| a.kind() == "widened")
        .collect();
    assert_eq!(widened.len(), 2);
    assert_eq!(
        widened[0].message(),
        "push `to-web` reaches more targets: +1 host"
    );
}

#[test]
fn a_renamed_push_is_not_removed_and_added() {
    let new = BASE.replace(r#"name = "configs""#, r#"name = "app-configs""#);
    let d = run(BASE, &new);
    assert!(d.added.is_empty() && d.removed.is_empty(), "{d:?}");
    assert_eq!(d.renamed.len(), 1);
    assert_eq!(d.renamed[0].old, "configs");
    assert_eq!(d.renamed[0].new, "app-configs");
    assert!(d.renamed[0].fields.is_empty());
    // The edge to-web -> configs is the same edge under the new name.
    assert!(d.edges_added.is_empty() && d.edges_removed.is_empty());
    assert!(d.stage_moves.is_empty());
    assert!(d.attention.is_empty());
    assert_eq!(d.summary(), "1 renamed");
}

#[test]
fn a_variable_change_is_named_as_the_cause() {
    let new = BASE.replace(r#"version = "1.4.2""#, r#"version = "1.4.3""#);
    let d = run(BASE, &new);
    let names: Vec<&str> = d.changed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["artifact", "to-web"]);
    let to_web = &d.changed[1];
    assert_eq!(
        field(to_web, "file_source[0].files").to_string(),
        "file_source[0].files: +/data/stage/app-1.4.3.tar.gz, -/data/stage/app-1.4.2.tar.gz"
    );
    assert_eq!(
        to_web.causes,
        [Cause::Var {
            name: "version".into()
        }]
    );
    assert!(!to_web.targets.widened());
    assert_eq!(
        d.vars,
        [VarChange {
            name: "version".into(),
            old: Some("1.4.2".into()),
            new: Some("1.4.3".into())
        }]
    );
    // The inferred edge stays (its reason text changes, the ordering does not).
    assert!(d.edges_added.is_empty() && d.edges_removed.is_empty());
    assert!(d.attention.is_empty(), "{:?}", d.attention);
}

#[test]
fn a_removed_push_needs_attention_and_takes_its_edges() {
    let new = BASE.replace(
        "[[push]]\nname = \"configs\"\nafter = [\"to-web\"]\nfrom = { hosts = \"build\", files = [\"/etc/app/app.conf\"] }\nto = { hosts = \"web\", path = \"/etc/app/\" }\n",
        "",
    );
    assert_ne!(new, BASE);
    let d = run(BASE, &new);
    assert_eq!(d.removed.len(), 1);
    assert_eq!(d.removed[0].name, "configs");
    assert_eq!(d.removed[0].stage, 3);
    assert_eq!(
        d.edges_removed,
        [EdgeChange {
            dependency: "to-web".into(),
            dependent: "configs".into(),
            reason: None
        }]
    );
    assert_eq!(d.old_stages, 3);
    assert_eq!(d.new_stages, 2);
    assert_eq!(
        d.attention,
        [Attention::Removed {
            push: "configs".into()
        }]
    );
    assert_eq!(d.summary(), "-1 push; 3 -> 2 stages");
}

#[test]
fn dropping_after_loses_ordering_and_moves_a_stage() {
    let new = BASE.replace("after = [\"to-web\"]\n", "");
    let d = run(BASE, &new);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(field(&d.changed[0], "after").to_string(), "after: -to-web");
    assert_eq!(
        d.stage_moves,
        [StageMove {
            push: "configs".into(),
            old: 3,
            new: 1
        }]
    );
    assert!(matches!(
        &d.attention[..],
        [Attention::LostOrdering { dependency, dependent, was }]
            if dependency == "to-web" && dependent == "configs" && was == "after"
    ));
}

#[test]
fn settings_and_scalars_are_reported_old_to_new() {
    let new = BASE
        .replace(
            "to = { hosts = \"web\", path = \"/opt/app/\" }",
            "to = { hosts = \"web\", path = \"/opt/app/\" }\ntimeout = 1800\nenabled = false",
        )
        .replace(
            "name = \"rel\"",
            "name = \"rel\"\ndescription = \"ship it\"",
        );
    let d = run(BASE, &new);
    let to_web = &d.changed[0];
    assert_eq!(
        field(to_web, "timeout").to_string(),
        "timeout: (unset) -> 1800"
    );
    assert_eq!(
        field(to_web, "enabled").to_string(),
        "enabled: true -> false"
    );
    assert!(d.attention.contains(&Attention::Disabled {
        push: "to-web".into()
    }));
    assert_eq!(d.settings.len(), 1);
    assert_eq!(
        d.settings[0].to_string(),
        "plan.description: (unset) -> \"ship it\""
    );
}

#[test]
fn a_new_overwrite_risk_is_a_new_warning() {
    let new = BASE.replace(
        "from = { hosts = \"build\", files = [\"/etc/app/app.conf\"] }",
        "from = { hosts = \"relay\", files = [\"/data/stage/app.conf\"] }",
    );
    let d = run(BASE, &new);
    assert!(
        d.attention.iter().any(|a| matches!(a,
            Attention::NewWarning { code, push: Some(push), .. }
                if code == "plan::parser::overwriting_copies" && push == "configs")),
        "{:?}",
        d.attention
    );
}

#[test]
fn without_an_old_version_everything_is_added() {
    let (n, ng) = parse(BASE);
    let d = diff(
        None,
        DiffSide {
            plan: &n.plan,
            graph: &ng,
            warnings: &n.warnings,
        },
    );
    assert!(d.has_changes());
    assert_eq!(d.added.len(), 3);
    assert_eq!(
        d.summary(),
        "new plan: +3 pushes in 3 stages; targets +4 hosts"
    );
    let doc = diff_json(&d);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["old_plan"], Value::Null);
    assert_eq!(doc["added"][2]["name"], "configs");
    assert_eq!(doc["added"][2]["request"]["file_target_path"], "/etc/app/");
}

#[test]
fn json_lists_fields_and_causes() {
    let new = BASE.replace(
        r#"ips = ["0:10.0.3.1", "0:10.0.3.2"]"#,
        r#"ips = ["0:10.0.3.1"]"#,
    );
    let doc = diff_json(&run(BASE, &new));
    assert_eq!(doc["has_changes"], true);
    assert_eq!(
        doc["changed"][0]["fields"][0],
        json!({"path": "target_server.ip_list", "added": [], "removed": ["0:10.0.3.2"]})
    );
    assert_eq!(
        doc["changed"][0]["causes"][0],
        json!({"group": "web", "file": "plan.toml"})
    );
    assert_eq!(doc["targets"]["removed"], json!(["0:10.0.3.2"]));
    // Narrowed targets are not "widened".
    assert_eq!(doc["attention"], json!([]));
}

#[test]
fn list_items_read_as_hosts_selectors_and_order() {
    let mut out = Vec::new();
    diff_values(
        "s".into(),
        Some(
            &json!({"ip_list": [{"bk_cloud_id": 0, "ip": "::1"}, {"bk_cloud_id": 1, "ip": "10.0.0.1"}],
                     "topo_node_list": [{"id": 7, "node_type": "set"}]}),
        ),
        Some(
            &json!({"ip_list": [{"bk_cloud_id": 1, "ip": "10.0.0.1"}, {"bk_cloud_id": 0, "ip": "::1"}],
                     "dynamic_group_list": [{"id": "abc"}]}),
        ),
        &mut out,
    );
    let lines: Vec<String> = out.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "s.ip_list: same members, new order",
            "s.topo_node_list: -set:7",
            "s.dynamic_group_list: +abc",
        ]
    );
}

#[test]
fn a_renamed_push_whose_group_changed_is_still_a_rename() {
    let new = BASE
        .replace(r#"name = "configs""#, r#"name = "app-configs""#)
        .replace(
            r#"ips = ["0:10.0.3.1", "0:10.0.3.2"]"#,
            r#"ips = ["0:10.0.3.1", "0:10.0.3.2", "0:10.0.3.9"]"#,
        );
    let d = run(BASE, &new);
    assert!(d.added.is_empty() && d.removed.is_empty(), "{d:?}");
    let r = &d.renamed[0];
    assert_eq!((r.old.as_str(), r.new.as_str()), ("configs", "app-configs"));
    let fields: Vec<String> = r.fields.iter().map(ToString::to_string).collect();
    assert_eq!(fields, ["target_server.ip_list: +0:10.0.3.9"]);
    assert_eq!(
        r.causes,
        [Cause::Group {
            name: "web".into(),
            file: Some("plan.toml".into())
        }]
    );
    assert!(d.attention.contains(&Attention::Widened {
        push: "app-configs".into(),
        hosts: r.targets.clone()
    }));
    assert_eq!(d.changed.len(), 1, "to-web changed too: {:?}", d.changed);
}

#[test]
fn a_renamed_push_with_a_new_target_is_removed_and_added() {
    let new = BASE
        .replace(r#"name = "configs""#, r#"name = "app-configs""#)
        .replace(r#"path = "/etc/app/""#, r#"path = "/etc/app2/""#);
    let d = run(BASE, &new);
    assert!(d.renamed.is_empty());
    assert_eq!(d.added[0].name, "app-configs");
    assert_eq!(d.removed[0].name, "configs");
}

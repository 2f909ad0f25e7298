//! Every plan in `plans/`: stages, dot, Mermaid and the graph and show JSON documents.

use crate::parse;

const PLANS: &[&str] = &[
    "plans/release.toml",
    "plans/logs.toml",
    "plans/windows.toml",
    "plans/fanout.toml",
];

fn snapshot_name(path: &str, what: &str) -> String {
    let stem = path.trim_start_matches("plans/").trim_end_matches(".toml");
    format!("{stem}-{what}")
}

#[test]
fn plans_render_stably() {
    for path in PLANS {
        let parsed = parse(path).unwrap_or_else(|e| panic!("{path}: {:?}", e.problems()));
        let graph = plan_graph::build(&parsed.plan)
            .unwrap_or_else(|e| panic!("{path}: {:?}", e.problems()));
        let plan = &parsed.plan;
        insta::assert_snapshot!(snapshot_name(path, "dot"), plan_graph::dot(plan, &graph));
        insta::assert_snapshot!(
            snapshot_name(path, "mermaid"),
            plan_graph::mermaid(plan, &graph)
        );
        insta::assert_json_snapshot!(
            snapshot_name(path, "graph-json"),
            plan_graph::graph_json(plan, &graph)
        );
        insta::assert_json_snapshot!(
            snapshot_name(path, "show-json"),
            plan_graph::show_json(plan, &graph, &parsed.warnings)
        );
    }
}

/// The contract example: stages and the inferred reason, as `design/plan-format.md` says.
#[test]
fn release_plan_matches_the_contract() {
    let parsed = parse("plans/release.toml").expect("valid");
    let graph = plan_graph::build(&parsed.plan).expect("ordered");
    let doc = plan_graph::show_json(&parsed.plan, &graph, &parsed.warnings);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["plan"], "release-1-4");
    assert_eq!(doc["api"], "v2");
    assert_eq!(
        doc["stages"],
        serde_json::json!([
            {"stage": 1, "pushes": ["artifact-to-relays"]},
            {"stage": 2, "pushes": ["relays-to-web"]},
            {"stage": 3, "pushes": ["configs"]},
        ])
    );
    let web = &doc["pushes"][1];
    assert_eq!(web["name"], "relays-to-web");
    assert_eq!(web["depends_on"], serde_json::json!(["artifact-to-relays"]));
    assert_eq!(
        web["inferred"],
        serde_json::json!([{
            "after": "artifact-to-relays",
            "reason": "reads /data/stage/app-1.4.2.tar.gz on relay, which artifact-to-relays delivers"
        }])
    );
    let request = &web["request"];
    assert_eq!(request["bk_biz_id"], 2);
    assert_eq!(request["account"], "deploy");
    assert_eq!(request["file_target_path"], "/opt/app/releases/");
    assert_eq!(request["task_name"], "release-1-4/relays-to-web");
    assert_eq!(request["timeout"], 1800);
    assert_eq!(request["upload_speed_limit"], 50);
    assert_eq!(request["download_speed_limit"], 20);
    assert_eq!(
        request["target_server"],
        serde_json::json!({
            "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.9.9"}],
            "dynamic_group_id_list": ["blo8gojho0skft7pr5q0"],
            "topo_node_list": [{"id": 1000, "node_type": "module"}, {"id": 7, "node_type": "set"}]
        })
    );
    assert_eq!(request.get("ip_list"), None);
    assert_eq!(request["file_source"][0]["account"], "deploy");
    assert!(request["file_source"][0].get("ip_list").is_none());
}

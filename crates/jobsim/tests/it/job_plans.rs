//! v3 `get_job_plan_list` and `get_job_plan_detail` over the world's `[[job_plan]]` entries:
//! JOB's paging and filters, the detail as written, unknown and foreign plans, the gateway's
//! GET, scope checks and authentication like every other API.

use axum::http::{Method, StatusCode};
use plan_bkjob::Envelope;
use plan_bkjob::code;
use plan_bkjob::job_plan::{JobPlanDetail, JobPlanPage};
use serde_json::{Value, json};

use crate::support::Sim;

const WORLD: &str = r#"
[[business]]
id = 2

[[business]]
id = 3

[[job_plan]]
bk_biz_id = 2
id = 10
name = "release web"
creator = "alice"
last_modify_user = "bob"
last_modify_time = 1700000000000
[[job_plan.global_var_list]]
id = 1
type = 1
name = "version"
value = "1.4.2"
[[job_plan.step_list]]
id = 1
type = 2
name = "push"
[job_plan.step_list.file_info]
timeout = 600
source_speed_limit = 10
transfer_mode = 1
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["/data/app-${version}.tgz"]
file_type = 1
account = { id = 1, name = "root", alias = "root" }
[job_plan.step_list.file_info.file_source_list.server]
ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.1" }]
[job_plan.step_list.file_info.file_destination]
path = "/opt/app/"
account = { alias = "root" }
[job_plan.step_list.file_info.file_destination.server]
host_id_list = [7, 8]

[[job_plan]]
bk_biz_id = 2
id = 11
name = "config"
creator = "bob"

[[job_plan]]
bk_biz_id = 2
id = 12
name = "Release db"
creator = "alice"

[[job_plan]]
bk_biz_id = 3
id = 13
name = "another business"
"#;

fn ids(reply: &Value) -> Vec<i64> {
    assert_eq!(reply["code"], 0, "{reply}");
    let page: JobPlanPage = serde_json::from_value(reply["data"].clone()).expect("a page");
    page.data.iter().map(|plan| plan.id).collect()
}

async fn list(sim: &Sim, extra: Value) -> Value {
    let mut body = json!({"bk_scope_type": "biz", "bk_scope_id": "2"});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    sim.esb("jobv3/get_job_plan_list", body).await
}

#[tokio::test]
async fn lists_one_business_in_pages_with_jobs_filters() {
    let sim = Sim::with_config(WORLD);
    let all = list(&sim, json!({})).await;
    assert_eq!(ids(&all), [10, 11, 12]);
    assert_eq!(
        (
            &all["data"]["start"],
            &all["data"]["length"],
            &all["data"]["total"]
        ),
        (&json!(0), &json!(20), &json!(3))
    );
    let summary = &all["data"]["data"][0];
    assert_eq!(summary["name"], "release web");
    assert_eq!(summary["last_modify_user"], "bob");
    assert_eq!(
        (&summary["bk_scope_type"], &summary["bk_scope_id"]),
        (&json!("biz"), &json!("2"))
    );
    assert!(
        summary.get("step_list").is_none(),
        "the list has no steps: {summary}"
    );

    let second = list(&sim, json!({"start": 1, "length": 1})).await;
    assert_eq!(ids(&second), [11]);
    assert_eq!(second["data"]["total"], 3);
    assert!(ids(&list(&sim, json!({"start": 9})).await).is_empty());

    // `name` is JOB's `LIKE %name%` (case-insensitive); the others are equalities.
    assert_eq!(ids(&list(&sim, json!({"name": "release"})).await), [10, 12]);
    assert_eq!(
        ids(&list(&sim, json!({"creator": "alice"})).await),
        [10, 12]
    );
    assert_eq!(
        ids(&list(&sim, json!({"last_modify_user": "bob"})).await),
        [10]
    );
    let window = json!({"last_modify_time_start": 1_699_999_999_999_i64});
    assert_eq!(ids(&list(&sim, window).await), [10]);
}

#[tokio::test]
async fn the_detail_is_the_worlds_entry_in_jobs_names() {
    let sim = Sim::with_config(WORLD);
    let reply = sim
        .esb(
            "jobv3/get_job_plan_detail",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_plan_id": 10}),
        )
        .await;
    let data = &reply["data"];
    assert_eq!(data["id"], 10);
    assert_eq!(data["step_list"][0]["file_info"]["source_speed_limit"], 10);
    assert_eq!(
        data["step_list"][0]["file_info"]["file_destination"]["server"]["host_id_list"],
        json!([7, 8])
    );
    assert_eq!(data["global_var_list"][0]["value"], "1.4.2");
    let decoded: Envelope<JobPlanDetail> = serde_json::from_value(reply.clone()).expect("decodes");
    let detail = decoded.data.expect("data");
    let world: plan_jobsim::Config = toml::from_str(WORLD).expect("world");
    assert_eq!(detail, world.job_plans[0]);
}

#[tokio::test]
async fn unknown_and_foreign_plans_are_1243009() {
    let sim = Sim::with_config(WORLD);
    for (scope_id, plan) in [("2", 99), ("2", 13), ("3", 10)] {
        let reply = sim
            .esb(
                "jobv3/get_job_plan_detail",
                json!({"bk_scope_type": "biz", "bk_scope_id": scope_id, "job_plan_id": plan}),
            )
            .await;
        assert_eq!(reply["code"], code::TASK_PLAN_NOT_EXIST, "{reply}");
        assert_eq!(reply["result"], false);
    }
    let zero = sim
        .esb(
            "jobv3/get_job_plan_detail",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_plan_id": 0}),
        )
        .await;
    assert_eq!(
        zero["code"],
        code::MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME,
        "{zero}"
    );
    let no_scope = sim
        .esb(
            "jobv3/get_job_plan_list",
            json!({"bk_scope_type": "biz", "bk_scope_id": "999"}),
        )
        .await;
    assert_eq!(no_scope["code"], code::APP_NOT_EXIST, "{no_scope}");
    let bad_scope = sim
        .esb(
            "jobv3/get_job_plan_list",
            json!({"bk_scope_type": "team", "bk_scope_id": "2"}),
        )
        .await;
    assert_eq!(bad_scope["code"], code::BAD_REQUEST, "{bad_scope}");
}

#[tokio::test]
async fn the_gateway_serves_both_by_get_with_a_query() {
    let sim = Sim::with_config(WORLD);
    let listed = sim
        .gw(
            Method::GET,
            "get_job_plan_list?bk_scope_type=biz&bk_scope_id=2&name=config",
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(ids(&listed.body), [11]);
    let detail = sim
        .gw(
            Method::GET,
            "get_job_plan_detail?bk_scope_type=biz&bk_scope_id=2&job_plan_id=11",
            None,
        )
        .await;
    assert_eq!(detail.body["data"]["name"], "config", "{}", detail.body);
    // The GET handler's required `job_plan_id`.
    let missing = sim
        .gw(
            Method::GET,
            "get_job_plan_detail?bk_scope_type=biz&bk_scope_id=2",
            None,
        )
        .await;
    assert_eq!(missing.body["code"], code::BAD_REQUEST, "{}", missing.body);
    // The gateway publishes them under GET only.
    let post = sim
        .gw(
            Method::POST,
            "get_job_plan_list",
            Some(json!({"bk_scope_type": "biz", "bk_scope_id": "2"})),
        )
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND, "{}", post.body);
}

#[tokio::test]
async fn credentials_are_checked_as_for_every_api() {
    let sim = Sim::with_config(WORLD);
    let esb = sim
        .call(
            Method::POST,
            "/api/c/compapi/v2/jobv3/get_job_plan_detail/",
            &[("content-type", "application/json")],
            Some(&json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_plan_id": 10})),
        )
        .await;
    assert_ne!(esb.body["code"], 0, "{}", esb.body);
    assert!(
        esb.body["data"].is_null(),
        "no plan without credentials: {}",
        esb.body
    );
    let gateway = sim
        .call(
            Method::GET,
            "/api/bk-job/prod/api/v3/get_job_plan_list?bk_scope_type=biz&bk_scope_id=2",
            &[],
            None,
        )
        .await;
    assert_ne!(gateway.status, StatusCode::OK, "{}", gateway.body);
}

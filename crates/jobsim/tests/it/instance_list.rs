//! v3 `get_job_instance_list`: JOB's filters, paging and answer shape, its validation codes,
//! and the gateway's GET with a query.

use axum::http::{Method, StatusCode};
use plan_bkjob::{Envelope, JobInstanceListRequest, JobInstanceListV3, RunStatus, code};
use serde_json::{Value, json};

use crate::support::{Sim, job_id, v3_body};

const HOUR_MS: i64 = 60 * 60 * 1000;

fn now_ms() -> i64 {
    chrono::Local::now().timestamp_millis()
}

/// A listing of scope biz 2 over the last and next hour, plus `extra`.
fn list_body(extra: Value) -> Value {
    let mut body = json!({
        "bk_scope_type": "biz", "bk_scope_id": "2",
        "create_time_start": now_ms() - HOUR_MS, "create_time_end": now_ms() + HOUR_MS,
    });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

async fn list(sim: &Sim, extra: Value) -> Value {
    sim.esb("jobv3/get_job_instance_list", list_body(extra))
        .await
}

/// The ids a listing answered, in its order.
fn ids(reply: &Value) -> Vec<u64> {
    assert_eq!(reply["code"], 0, "{reply}");
    reply["data"]["data"]
        .as_array()
        .map(|jobs| {
            jobs.iter()
                .filter_map(|j| j["job_instance_id"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

/// Submits a v3 transfer named `name`, created without starting (status 1) unless `run`.
async fn submit(sim: &Sim, name: &str, target: &str, run: bool) -> u64 {
    let mut body = v3_body();
    body["task_name"] = json!(name);
    body["target_server"] = json!({"ip_list": [{"bk_cloud_id": 0, "ip": target}]});
    body["start_task"] = json!(run);
    job_id(&sim.esb("jobv3/fast_transfer_file", body).await)
}

#[tokio::test(start_paused = true)]
async fn lists_newest_first_with_jobs_fields_and_decodes_as_plan_bkjob_types() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"abc");
    let first = submit(&sim, "plan:site/web-a#0a1b2c3d", "10.0.0.2", true).await;
    sim.wait(first).await;
    let second = submit(&sim, "plan:site/web-b#0a1b2c3d", "10.0.0.3", false).await;

    let reply = list(&sim, json!({})).await;
    assert_eq!(ids(&reply), [second, first]);
    let page = &reply["data"];
    assert_eq!(
        (
            page["start"].clone(),
            page["length"].clone(),
            page["total"].clone()
        ),
        (json!(0), json!(20), json!(2))
    );
    let done = &page["data"][1];
    for (field, want) in [
        ("bk_scope_type", json!("biz")),
        ("bk_scope_id", json!("2")),
        ("bk_biz_id", json!(2)),
        ("name", json!("plan:site/web-a#0a1b2c3d")),
        ("operator", json!("admin")),
        ("status", json!(RunStatus::Success.code())),
        ("launch_mode", json!(plan_bkjob::start_way::API)),
        ("type", json!(plan_bkjob::job_type::FILE)),
        ("job_plan_id", json!(-1)),
        ("job_template_id", json!(-1)),
    ] {
        assert_eq!(done[field], want, "{field} in {done}");
    }
    for field in ["create_time", "start_time", "end_time", "total_time"] {
        assert!(done[field].is_i64(), "{field} in {done}");
    }
    // A job created but not started has no start, end or total time yet.
    let blank = &page["data"][0];
    assert_eq!(blank["status"], json!(RunStatus::Blank.code()));
    assert_eq!(
        (blank["start_time"].clone(), blank["total_time"].clone()),
        (Value::Null, Value::Null)
    );

    let decoded: Envelope<JobInstanceListV3> =
        serde_json::from_value(reply.clone()).expect("plan_bkjob decodes the answer");
    let data = decoded.data.expect("data");
    assert_eq!(data.total, 2);
    assert_eq!(
        data.data[1].job_instance_id,
        i64::try_from(first).expect("id")
    );
    assert_eq!(data.data[1].status, RunStatus::Success);
}

#[tokio::test(start_paused = true)]
async fn filters_as_jobs_query_does() {
    let sim = Sim::new();
    let a = submit(&sim, "plan:site/web-a#0a1b2c3d", "10.0.0.2", false).await;
    let b = submit(&sim, "plan:site/web_b#0a1b2c3d", "10.0.0.3", false).await;
    let c = submit(&sim, "plan:other/db#99999999", "10.0.0.2", false).await;

    // `name` is `LIKE %name%`: case-insensitive, and `_` matches any one character.
    assert_eq!(
        ids(&list(&sim, json!({"name": "PLAN:SITE/"})).await),
        [b, a]
    );
    assert_eq!(ids(&list(&sim, json!({"name": "web_a"})).await), [a]);
    assert_eq!(ids(&list(&sim, json!({"name": "web\\_"})).await), [b]);
    assert_eq!(ids(&list(&sim, json!({"name": "#99999999"})).await), [c]);
    // A blank name is no filter.
    assert_eq!(ids(&list(&sim, json!({"name": "  "})).await), [c, b, a]);
    // `ip` matches a host of the job exactly (targets and sources alike).
    assert_eq!(ids(&list(&sim, json!({"ip": "10.0.0.2"})).await), [c, a]);
    assert_eq!(ids(&list(&sim, json!({"ip": "10.0.0.1"})).await), [c, b, a]);
    assert_eq!(
        ids(&list(&sim, json!({"ip": "10.0.0.20"})).await),
        Vec::<u64>::new()
    );
    // `operator` exactly; `status`, `launch_mode` and `type` by number.
    assert_eq!(
        ids(&list(&sim, json!({"operator": "admin"})).await).len(),
        3
    );
    assert!(ids(&list(&sim, json!({"operator": "adm"})).await).is_empty());
    assert_eq!(ids(&list(&sim, json!({"status": 1})).await).len(), 3);
    assert!(ids(&list(&sim, json!({"status": 2})).await).is_empty());
    assert_eq!(
        ids(&list(&sim, json!({"launch_mode": 2, "type": 2})).await).len(),
        3
    );
    assert!(ids(&list(&sim, json!({"launch_mode": 1})).await).is_empty());
    assert!(ids(&list(&sim, json!({"type": 1})).await).is_empty());
    assert!(ids(&list(&sim, json!({"job_cron_id": 5})).await).is_empty());
    // A job id ignores every other filter, the creation window included.
    let only = list(
        &sim,
        json!({"job_instance_id": b, "name": "nothing", "create_time_start": 1, "create_time_end": 2}),
    )
    .await;
    assert_eq!(ids(&only), [b]);
    // Another scope's jobs are not listed; a window before the jobs lists nothing, `data` null.
    let other = sim
        .esb(
            "jobv3/get_job_instance_list",
            list_body(json!({"bk_scope_id": "3"})),
        )
        .await;
    assert_eq!(other["data"]["total"], 0);
    assert_eq!(other["data"]["data"], Value::Null);
    let before = list(
        &sim,
        json!({"create_time_start": now_ms() - 3 * HOUR_MS, "create_time_end": now_ms() - 2 * HOUR_MS}),
    )
    .await;
    assert_eq!(
        (
            before["data"]["total"].clone(),
            before["data"]["data"].clone()
        ),
        (json!(0), Value::Null)
    );
}

#[tokio::test(start_paused = true)]
async fn pages_by_start_and_length() {
    let sim = Sim::new();
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(submit(&sim, &format!("job-{i}"), "10.0.0.2", false).await);
    }
    all.reverse();
    let page = list(&sim, json!({"start": 1, "length": 2})).await;
    assert_eq!(ids(&page), all[1..3]);
    assert_eq!(
        (
            page["data"]["start"].clone(),
            page["data"]["length"].clone(),
            page["data"]["total"].clone()
        ),
        (json!(1), json!(2), json!(5))
    );
    let last = list(&sim, json!({"start": 4, "length": 1000})).await;
    assert_eq!(ids(&last), all[4..]);
    let past = list(&sim, json!({"start": 9})).await;
    assert_eq!(
        (past["data"]["total"].clone(), past["data"]["data"].clone()),
        (json!(5), Value::Null)
    );
    // A negative start is the first page; `"length": null` is the DAO's default, 10.
    let negative = list(&sim, json!({"start": -3, "length": null})).await;
    assert_eq!(ids(&negative), all);
    assert_eq!(
        (
            negative["data"]["start"].clone(),
            negative["data"]["length"].clone()
        ),
        (json!(0), json!(10))
    );
}

#[tokio::test]
async fn validation_gives_jobs_codes_in_jobs_order() {
    let sim = Sim::new();
    let now = now_ms();
    let max = JobInstanceListRequest::MAX_CREATE_TIME_SPAN_MS;
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            json!({"create_time_start": null}),
            code::MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME,
            "[create_time_start]",
        ),
        (
            json!({"create_time_start": 0}),
            code::MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME,
            "[create_time_start]",
        ),
        (
            json!({"create_time_end": null}),
            code::MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME,
            "[create_time_end]",
        ),
        (
            json!({"create_time_start": now, "create_time_end": now}),
            code::MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME,
            "[create_time_start|create_time_end]",
        ),
        (
            json!({"create_time_start": now, "create_time_end": now + max + 1}),
            code::ILLEGAL_PARAM,
            "",
        ),
        (json!({"type": 3}), code::ILLEGAL_PARAM, ""),
        (
            json!({"length": 0}),
            code::BAD_REQUEST,
            "'length' must be in range: [1,1000]",
        ),
        (
            json!({"length": 1001}),
            code::BAD_REQUEST,
            "'length' must be in range: [1,1000]",
        ),
        (json!({"length": "many"}), code::BAD_REQUEST, "Bad Request"),
        (
            json!({"start": 4_294_967_296_i64}),
            code::BAD_REQUEST,
            "Bad Request",
        ),
        (json!({"launch_mode": 9}), code::INTERNAL_ERROR, ""),
        (json!({"status": 99}), code::INTERNAL_ERROR, ""),
        (json!({"bk_scope_id": "77"}), code::APP_NOT_EXIST, ""),
        (
            json!({"bk_scope_type": "team"}),
            code::BAD_REQUEST,
            "bk_scope_type",
        ),
        // Bean validation comes before the window's check.
        (
            json!({"length": 0, "create_time_start": null}),
            code::BAD_REQUEST,
            "length",
        ),
    ];
    let sim_scoped = Sim::with_config("[[business]]\nid = 2\n");
    for (extra, want, message) in cases {
        let target = if want == code::APP_NOT_EXIST {
            &sim_scoped
        } else {
            &sim
        };
        let reply = target
            .esb("jobv3/get_job_instance_list", list_body(extra.clone()))
            .await;
        assert_eq!(reply["code"], want, "{extra}: {reply}");
        assert_eq!(reply["result"], false, "{extra}: {reply}");
        let text = reply["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{extra}: {reply}");
    }
    // The widest window JOB accepts is exactly 30 days.
    let widest = list(
        &sim,
        json!({"create_time_start": now - max, "create_time_end": now}),
    )
    .await;
    assert_eq!(widest["code"], 0, "{widest}");
}

#[tokio::test(start_paused = true)]
async fn the_gateway_serves_it_by_get_with_a_query() {
    let sim = Sim::new();
    let id = submit(&sim, "plan:site/web a#0a1b2c3d", "10.0.0.2", false).await;
    let (from, to) = (now_ms() - HOUR_MS, now_ms() + HOUR_MS);
    let query = format!(
        "get_job_instance_list?bk_scope_type=biz&bk_scope_id=2&create_time_start={from}&create_time_end={to}&name=web%20a&length=5"
    );
    let reply = sim.gw(Method::GET, &query, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(ids(&reply.body), [id]);
    assert_eq!(reply.body["data"]["length"], 5);
    // The GET handler's required parameters.
    let missing = sim
        .gw(
            Method::GET,
            "get_job_instance_list?bk_scope_type=biz&bk_scope_id=2",
            None,
        )
        .await;
    assert_eq!(missing.body["code"], code::BAD_REQUEST, "{}", missing.body);
    // The gateway publishes it under GET only.
    let post = sim
        .gw(
            Method::POST,
            "get_job_instance_list",
            Some(list_body(json!({}))),
        )
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND, "{}", post.body);
}

#[tokio::test(start_paused = true)]
async fn a_script_job_is_type_1_and_a_transfer_type_2() {
    let sim = Sim::new();
    let transfer = submit(&sim, "push", "10.0.0.2", false).await;
    let script = job_id(
        &sim.esb(
            "jobv3/fast_execute_script",
            json!({
                "bk_scope_type": "biz", "bk_scope_id": "2", "account_alias": "root",
                "script_content": "ZWNobyBoaQo=", "script_language": 1, "task_name": "probe",
                "target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]},
            }),
        )
        .await,
    );
    assert_eq!(ids(&list(&sim, json!({"type": 1})).await), [script]);
    assert_eq!(ids(&list(&sim, json!({"type": 2})).await), [transfer]);
    let all = list(&sim, json!({})).await;
    assert_eq!(all["data"]["data"][0]["type"], 1, "{all}");
    assert_eq!(all["data"]["data"][1]["type"], 2, "{all}");
}

//! The simulator and plan-bkjob's wire types agree: requests serialised from the shared
//! types are accepted, and every response parses into the shared response types.

use plan_bkjob::{
    AccountV3, BatchIpLogV3, Envelope, FastPushFileRequest, FastTransferFileRequest, FileSourceV2,
    FileSourceV3, GatewayErrorBody, IpHost, JobExecuteData, JobInstanceStatusV2,
    JobInstanceStatusV3, RunStatus, ServerV2, ServerV3, StepInstanceLogV2,
};
use serde_json::{Value, json};

use crate::support::Sim;

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Envelope<T> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[tokio::test(start_paused = true)]
async fn shared_types_round_trip() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"wire");
    let v2 = FastPushFileRequest {
        bk_biz_id: 2,
        bk_scope_type: None,
        bk_scope_id: None,
        task_name: Some("plan/push".into()),
        account: "root".into(),
        file_target_path: "/v2/".into(),
        file_source: vec![FileSourceV2 {
            files: vec!["/data/a.bin".into()],
            account: "root".into(),
            target_server: None,
            ip_list: Some(vec![IpHost::new(0, "10.0.0.1")]),
            custom_query_id: None,
        }],
        target_server: Some(ServerV2 {
            ip_list: vec![IpHost::new(0, "10.0.0.2")],
            ..ServerV2::default()
        }),
        ip_list: None,
        custom_query_id: None,
        timeout: Some(600),
        upload_speed_limit: None,
        download_speed_limit: None,
        bk_callback_url: None,
    };
    let r: Envelope<JobExecuteData> = parse(
        sim.esb(
            "job/fast_push_file",
            serde_json::to_value(&v2).expect("ser"),
        )
        .await,
    );
    let data = r.data.expect("data");
    assert_eq!(data.job_instance_name.as_deref(), Some("plan/push"));
    let id = data.job_instance_id;
    sim.wait(u64::try_from(id).expect("positive")).await;
    let s: Envelope<JobInstanceStatusV2> =
        parse(sim.v2_status(u64::try_from(id).expect("id")).await);
    let s = s.data.expect("status");
    assert!(s.is_finished);
    let log: Envelope<Vec<StepInstanceLogV2>> = parse(
        sim.esb(
            "job/get_job_instance_log",
            json!({"bk_biz_id": 2, "job_instance_id": id}),
        )
        .await,
    );
    assert_eq!(log.data.expect("log").len(), 1);

    let v3 = FastTransferFileRequest {
        bk_scope_type: "biz".into(),
        bk_scope_id: "2".into(),
        task_name: None,
        account_id: None,
        account_alias: Some("root".into()),
        file_target_path: "/v3".into(),
        file_target_name: None,
        file_source_list: vec![FileSourceV3 {
            file_list: vec!["/data/a.bin".into()],
            file_type: Some(1),
            account: AccountV3 {
                id: None,
                alias: Some("root".into()),
            },
            server: ServerV3 {
                host_id_list: vec![1001],
                ..ServerV3::default()
            },
            file_source_id: None,
            file_source_code: None,
        }],
        timeout: None,
        upload_speed_limit: Some(10),
        download_speed_limit: None,
        transfer_mode: Some(2),
        target_server: ServerV3 {
            ip_list: vec![IpHost::new(0, "10.0.0.2")],
            ..ServerV3::default()
        },
        callback_url: None,
        rolling_config: None,
        start_task: Some(true),
    };
    let r: Envelope<JobExecuteData> = parse(
        sim.esb(
            "jobv3/fast_transfer_file",
            serde_json::to_value(&v3).expect("ser"),
        )
        .await,
    );
    let data = r.data.expect("data");
    assert!(data.step_instance_id.is_some());
    let id = u64::try_from(data.job_instance_id).expect("id");
    let s: Envelope<JobInstanceStatusV3> = parse(sim.wait(id).await);
    let s = s.data.expect("status");
    assert!(s.finished);
    assert_eq!(s.job_instance.expect("instance").status, RunStatus::Success);
    let batch: Envelope<BatchIpLogV3> = parse(
        sim.esb(
            "jobv3/batch_get_job_instance_ip_log",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "step_instance_id": id + 1, "host_id_list": [1001, 1002]}),
        )
        .await,
    );
    assert!(batch.data.is_some());
    assert_eq!(
        sim.read("10.0.0.2", "/v3/a.bin").as_deref(),
        Some(&b"wire"[..])
    );

    let err = sim
        .gw(
            axum::http::Method::POST,
            "fast_transfer_file",
            Some(json!({})),
        )
        .await;
    let e: Envelope<Value> = parse(err.body);
    assert_eq!(e.code, plan_bkjob::code::BAD_REQUEST);
    let gw = sim
        .call(
            axum::http::Method::POST,
            "/api/bk-job/prod/api/v3/fast_transfer_file",
            &[],
            None,
        )
        .await;
    let g: GatewayErrorBody = serde_json::from_value(gw.body).expect("gateway error body");
    assert_eq!(g.code, plan_bkjob::code::GATEWAY_INVALID_ARGS);
}

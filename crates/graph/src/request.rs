//! From a push to the JOB request body: the only place a body is built.
//!
//! `plan show` prints what these functions return and `plan apply` sends it, so the two can
//! never disagree. Credentials are not part of a body; the client adds them.

use plan_bkjob::rolling::{FileSourceRollingConfigV3, RollingConfigV3, rolling_type};
use plan_bkjob::{
    AccountV3, DynamicGroup, FastPushFileRequest, FastTransferFileRequest, FileSourceV2,
    FileSourceV3, IpHost, ServerV2, ServerV3, TopoNodeRef, file_type,
};
use plan_parser::{
    ApiVersion, FileSourceRef, HostAddr, HostId, HostSet, Plan, Push, RollingOver, Source,
};
use serde::{Serialize, Serializer};

/// One JOB call: a v2 `fast_push_file` or a v3 `fast_transfer_file` body.
///
/// Serialises to exactly the JSON body sent (no wrapper, no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRequest {
    /// ESB `job/fast_push_file`.
    V2(FastPushFileRequest),
    /// `jobv3/fast_transfer_file`.
    V3(FastTransferFileRequest),
}

impl JobRequest {
    /// The API family of the body.
    pub fn api(&self) -> ApiVersion {
        match self {
            JobRequest::V2(_) => ApiVersion::V2,
            JobRequest::V3(_) => ApiVersion::V3,
        }
    }

    /// The JOB task name the body carries.
    pub fn task_name(&self) -> Option<&str> {
        match self {
            JobRequest::V2(r) => r.task_name.as_deref(),
            JobRequest::V3(r) => r.task_name.as_deref(),
        }
    }

    /// The same body for one-phase submission: a v3 body without `start_task` (JOB starts the
    /// job at creation), for a JOB that ignores `start_task` (before 3.12). A v2 body has no
    /// such field and is returned unchanged. This is the one deliberate difference between a
    /// body `plan show` prints and one `plan apply` may send.
    #[must_use]
    pub fn one_phase(&self) -> JobRequest {
        match self {
            JobRequest::V2(r) => JobRequest::V2(r.clone()),
            JobRequest::V3(r) => JobRequest::V3(FastTransferFileRequest {
                start_task: None,
                ..r.clone()
            }),
        }
    }

    /// True for a v3 body that creates its job unstarted (`start_task: false`): nothing runs
    /// before `operate_job_instance` code 2.
    pub fn creates_unstarted(&self) -> bool {
        matches!(self, JobRequest::V3(r) if r.start_task == Some(false))
    }

    /// The body as a JSON value (field order as sent).
    pub fn to_json(&self) -> serde_json::Value {
        // Serialising plain data structs cannot fail; `Null` keeps this infallible anyway.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl Serialize for JobRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JobRequest::V2(r) => r.serialize(serializer),
            JobRequest::V3(r) => r.serialize(serializer),
        }
    }
}

/// The request for `push`, in the plan's API family.
///
/// Host groups expand to `ip_list` (de-duplicated, first-seen order, as the parser resolved
/// them), dynamic groups and topo nodes, always in the `target_server` form (for the targets
/// and, in v2, inside each `file_source`). Timeout and speed limits are the effective values
/// (the push's, else `[plan]`'s); absent values are left out so JOB applies its defaults.
pub fn request_for(plan: &Plan, push: &Push) -> JobRequest {
    build(plan, push, &push.target.hosts)
}

/// The request for `push` sent only to `only_targets`: a retry for the hosts that failed.
///
/// The targets become exactly these static hosts (de-duplicated, in the given order), without
/// the push's dynamic groups or topo nodes: the hosts JOB resolved from those are reported back
/// by address, and only the failed ones must receive the files again. Everything else (sources,
/// account, path, limits, task name) is the same as [`request_for`].
pub fn request_for_hosts(plan: &Plan, push: &Push, only_targets: &[HostAddr]) -> JobRequest {
    let mut ips: Vec<HostAddr> = Vec::with_capacity(only_targets.len());
    for &host in only_targets {
        if !ips.contains(&host) {
            ips.push(host);
        }
    }
    let hosts = HostSet {
        ips,
        host_ids: Vec::new(),
        dynamic_groups: Vec::new(),
        topo_nodes: Vec::new(),
    };
    build(plan, push, &hosts)
}

/// The request for `push` sent only to the hosts with these CMDB ids: a v3 retry for the
/// hosts that failed, which JOB reported by `bk_host_id` (an IPv6-only host reached through a
/// dynamic group or a topology node has no IPv4 address to name it by). Otherwise as
/// [`request_for_hosts`].
pub fn request_for_host_ids(plan: &Plan, push: &Push, only_targets: &[HostId]) -> JobRequest {
    let mut host_ids: Vec<HostId> = Vec::with_capacity(only_targets.len());
    for &id in only_targets {
        if !host_ids.contains(&id) {
            host_ids.push(id);
        }
    }
    let hosts = HostSet {
        ips: Vec::new(),
        host_ids,
        dynamic_groups: Vec::new(),
        topo_nodes: Vec::new(),
    };
    build(plan, push, &hosts)
}

fn build(plan: &Plan, push: &Push, targets: &HostSet) -> JobRequest {
    let task_name = Some(plan.task_name(push));
    let timeout = push.timeout.as_ref().map(|s| s.value);
    let upload_speed_limit = push.upload_speed_limit.as_ref().map(|s| s.value);
    let download_speed_limit = push.download_speed_limit.as_ref().map(|s| s.value);
    match plan.api {
        ApiVersion::V2 => JobRequest::V2(FastPushFileRequest {
            bk_biz_id: plan.bk_biz_id.value,
            // Beside `bk_biz_id`, which JOB reads only while its `bkBizIdCompatible` switch
            // is on; the scope fields win when present.
            bk_scope_type: Some(plan.scope_type.as_str().to_owned()),
            bk_scope_id: Some(plan.bk_biz_id.value.to_string()),
            task_name,
            account: push.target.account.value.clone(),
            file_target_path: push.target.path.value.clone(),
            file_source: push
                .sources
                .iter()
                .map(|s| FileSourceV2 {
                    files: s.files.iter().map(|f| f.path.clone()).collect(),
                    account: s.account.value.clone(),
                    target_server: Some(server_v2(&s.hosts)),
                    ip_list: None,
                    custom_query_id: None,
                })
                .collect(),
            target_server: Some(server_v2(targets)),
            ip_list: None,
            custom_query_id: None,
            timeout,
            upload_speed_limit,
            download_speed_limit,
            bk_callback_url: callback_url(push),
        }),
        ApiVersion::V3 => JobRequest::V3(FastTransferFileRequest {
            bk_scope_type: plan.scope_type.as_str().to_owned(),
            bk_scope_id: plan.bk_biz_id.value.to_string(),
            task_name,
            account_id: push.target.account_id.as_ref().map(|id| id.value),
            account_alias: push
                .target
                .account_id
                .is_none()
                .then(|| push.target.account.value.clone()),
            file_target_path: push.target.path.value.clone(),
            file_target_name: push
                .target
                .file_target_name
                .as_ref()
                .map(|n| n.value.clone()),
            file_source_list: push.sources.iter().map(source_v3).collect(),
            timeout,
            upload_speed_limit,
            download_speed_limit,
            transfer_mode: push.transfer_mode.as_ref().map(|m| m.value.code()),
            target_server: server_v3(targets),
            callback_url: callback_url(push),
            rolling_config: rolling_config(push),
            // Two-phase submission: JOB creates the job unstarted, `apply` journals its id and
            // then starts it (see docs/apply.md). Built here so `plan show` prints it.
            start_task: Some(false),
        }),
    }
}

/// The URL JOB calls when the job ends (v2's `bk_callback_url`, v3's `callback_url`).
fn callback_url(push: &Push) -> Option<String> {
    push.release.callback_url.as_ref().map(|c| c.value.clone())
}

/// v3 `rolling_config`: JOB's own batches over the targets (`type` 1, by expression) or over
/// the source files (`type` 2). Serial execution, JOB's default, is left out.
fn rolling_config(push: &Push) -> Option<RollingConfigV3> {
    let rolling = push.release.rolling.as_ref()?;
    let mut config = RollingConfigV3 {
        mode: Some(rolling.mode),
        ..RollingConfigV3::default()
    };
    match &rolling.over {
        RollingOver::Targets { parsed, .. } => {
            config.rolling_type = Some(rolling_type::TARGET_EXECUTE_OBJECT);
            // The canonical form (single spaces, no stray whitespace) JOB stores.
            config.expression = Some(parsed.to_string());
        }
        RollingOver::Sources {
            sources_per_batch,
            files_per_source,
        } => {
            let as_i32 = |n: &Option<u32>| n.and_then(|n| i32::try_from(n).ok());
            config.rolling_type = Some(rolling_type::FILE_SOURCE);
            config.file_source = Some(FileSourceRollingConfigV3 {
                max_execute_object_num_in_batch: as_i32(sources_per_batch),
                max_file_num_of_single_execute_object: as_i32(files_per_source),
            });
        }
    }
    Some(config)
}

/// One v3 source: files on hosts (`file_type` left out, JOB's default 1), or a third-party
/// file source (`file_type = 3`, by code or id, without hosts or account).
fn source_v3(s: &Source) -> FileSourceV3 {
    let file_list = s.files.iter().map(|f| f.path.clone()).collect();
    match s.file_source.as_ref().map(|f| &f.value) {
        Some(reference) => FileSourceV3 {
            file_list,
            file_type: Some(file_type::FILE_SOURCE),
            account: AccountV3::default(),
            server: ServerV3::default(),
            file_source_id: match reference {
                FileSourceRef::Id(id) => Some(*id),
                FileSourceRef::Code(_) => None,
            },
            file_source_code: match reference {
                FileSourceRef::Code(code) => Some(code.clone()),
                FileSourceRef::Id(_) => None,
            },
        },
        None => FileSourceV3 {
            file_list,
            file_type: None,
            account: match &s.account_id {
                Some(id) => AccountV3 {
                    id: Some(id.value),
                    alias: None,
                },
                None => AccountV3 {
                    id: None,
                    alias: Some(s.account.value.clone()),
                },
            },
            server: server_v3(&s.hosts),
            file_source_id: None,
            file_source_code: None,
        },
    }
}

fn ip_host(addr: &HostAddr) -> IpHost {
    // Cloud ids are small in practice; an absurd one saturates instead of wrapping.
    IpHost::new(
        i64::try_from(addr.cloud_id).unwrap_or(i64::MAX),
        addr.ip.to_string(),
    )
}

fn topo(hosts: &HostSet) -> Vec<TopoNodeRef> {
    hosts
        .topo_nodes
        .iter()
        .map(|t| TopoNodeRef {
            id: t.id,
            node_type: t.node_type.clone(),
        })
        .collect()
}

fn server_v2(hosts: &HostSet) -> ServerV2 {
    ServerV2 {
        ip_list: hosts.ips.iter().map(ip_host).collect(),
        dynamic_group_id_list: hosts.dynamic_groups.clone(),
        topo_node_list: topo(hosts),
    }
}

fn server_v3(hosts: &HostSet) -> ServerV3 {
    ServerV3 {
        host_id_list: hosts.host_ids.iter().map(|id| id.0).collect(),
        ip_list: hosts.ips.iter().map(ip_host).collect(),
        dynamic_group_list: hosts
            .dynamic_groups
            .iter()
            .map(|id| DynamicGroup { id: id.clone() })
            .collect(),
        topo_node_list: topo(hosts),
    }
}

#[cfg(test)]
mod tests {
    use plan_parser::{Located, Origin, Setting, TransferMode};
    use serde_json::json;

    use super::*;
    use crate::testutil::plan;

    fn fixture() -> crate::testutil::TestPlan {
        plan()
            .group("build", &["10.0.0.5"])
            .group("relay", &["0:10.0.1.1", "0:10.0.1.2"])
            .group(
                "web",
                &["dyn:blo8gojho0skft7pr5q0", "module:1000", "0:10.0.1.2"],
            )
            .push(
                "to-web",
                &[
                    (&["relay", "10.0.1.1"], &["/data/stage/app.tgz"]),
                    (&["build"], &["/etc/app/extra/"]),
                ],
                (&["web", "relay", "0:10.0.9.9"], "/opt/app/"),
                &[],
            )
            .with_last(|p| {
                p.timeout = Some(Setting {
                    value: 600,
                    origin: Origin::Plan,
                    span: p.span,
                });
                p.download_speed_limit = Some(Setting {
                    value: 20,
                    origin: Origin::Push,
                    span: p.span,
                });
            })
    }

    #[test]
    fn v2_body_uses_target_server_forms_everywhere() {
        let plan = fixture().build();
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(
            body,
            json!({
                "bk_biz_id": 2,
                "bk_scope_type": "biz",
                "bk_scope_id": "2",
                "task_name": "test/to-web",
                "account": "root",
                "file_target_path": "/opt/app/",
                "file_source": [
                    {
                        "files": ["/data/stage/app.tgz"],
                        "account": "root",
                        "target_server": {"ip_list": [
                            {"bk_cloud_id": 0, "ip": "10.0.1.1"},
                            {"bk_cloud_id": 0, "ip": "10.0.1.2"}
                        ]}
                    },
                    {
                        "files": ["/etc/app/extra/"],
                        "account": "root",
                        "target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.5"}]}
                    }
                ],
                "target_server": {
                    "ip_list": [
                        {"bk_cloud_id": 0, "ip": "10.0.1.2"},
                        {"bk_cloud_id": 0, "ip": "10.0.1.1"},
                        {"bk_cloud_id": 0, "ip": "10.0.9.9"}
                    ],
                    "dynamic_group_id_list": ["blo8gojho0skft7pr5q0"],
                    "topo_node_list": [{"id": 1000, "node_type": "module"}]
                },
                "timeout": 600,
                "download_speed_limit": 20
            })
        );
        // Field order is part of "byte for byte": serialise and compare text too.
        let text = serde_json::to_string(&request_for(&plan, &plan.pushes[0])).expect("json");
        assert!(text.starts_with(
            r#"{"bk_biz_id":2,"bk_scope_type":"biz","bk_scope_id":"2","task_name":"test/to-web","account":"root""#
        ));
    }

    #[test]
    fn v3_body_has_scope_aliases_and_transfer_mode() {
        let mut plan = fixture()
            .v3()
            .with_last(|p| {
                p.transfer_mode = Some(Located {
                    value: TransferMode::Strict,
                    span: p.span,
                });
            })
            .build();
        plan.task_prefix = Some("ops-".into());
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(body["bk_scope_type"], "biz");
        assert_eq!(body["bk_scope_id"], "2");
        assert_eq!(body["task_name"], "ops-test/to-web");
        assert_eq!(body["account_alias"], "root");
        assert_eq!(body["transfer_mode"], 1);
        assert_eq!(body.get("bk_biz_id"), None);
        assert_eq!(body["start_task"], false, "two-phase: created unstarted");
        let request = request_for(&plan, &plan.pushes[0]);
        assert!(request.creates_unstarted());
        let one_phase = request.one_phase();
        assert!(!one_phase.creates_unstarted());
        assert_eq!(one_phase.to_json().get("start_task"), None);
        let mut without = body.clone();
        without
            .as_object_mut()
            .expect("object")
            .remove("start_task");
        assert_eq!(one_phase.to_json(), without, "only start_task differs");
        assert_eq!(
            body["file_source_list"][0],
            json!({
                "file_list": ["/data/stage/app.tgz"],
                "account": {"alias": "root"},
                "server": {"ip_list": [
                    {"bk_cloud_id": 0, "ip": "10.0.1.1"},
                    {"bk_cloud_id": 0, "ip": "10.0.1.2"}
                ]}
            })
        );
        assert_eq!(
            body["target_server"]["dynamic_group_list"],
            json!([{"id": "blo8gojho0skft7pr5q0"}])
        );

        plan.bk_biz_id.value = 9_991_001;
        plan.scope_type = plan_parser::ScopeType::BizSet;
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(body["bk_scope_type"], "biz_set");
        assert_eq!(body["bk_scope_id"], "9991001");
    }

    #[test]
    fn retry_targets_only_the_given_hosts() {
        let plan = fixture().build();
        let push = &plan.pushes[0];
        let failed = [
            push.target.hosts.ips[2],
            push.target.hosts.ips[0],
            push.target.hosts.ips[2],
        ];
        let body = request_for_hosts(&plan, push, &failed).to_json();
        assert_eq!(
            body["target_server"],
            json!({"ip_list": [
                {"bk_cloud_id": 0, "ip": "10.0.9.9"},
                {"bk_cloud_id": 0, "ip": "10.0.1.2"}
            ]})
        );
        assert_eq!(
            body["file_source"],
            request_for(&plan, push).to_json()["file_source"]
        );
    }

    fn parsed(text: &str) -> Plan {
        plan_parser::parse_str("plan.toml", text, &plan_parser::ParseOptions::default())
            .unwrap_or_else(|e| panic!("{:?}", e.problems()))
            .plan
    }

    /// Host ids, ranges, a CIDR block, a file source, a renamed delivery and account ids:
    /// each where `EsbFastTransferFileV3Request`, `EsbFileSourceV3DTO` and `EsbServerV3DTO`
    /// read them, and the body reads back as JOB's v3 request.
    #[test]
    fn v3_body_carries_host_ids_ranges_file_sources_and_account_ids() {
        let plan = parsed(
            r#"
[plan]
name = "fleet"
bk_scope_type = "biz_set"
bk_scope_id = "9991001"
account = "root"
api = "v3"

[hosts.web]
host_ids = [1001, 1002]
ips = ["host_id:1003"]

[hosts.db]
ips = ["10.0.1.[1:3]", "10.0.2.0/30"]

[[push]]
name = "artifact"
from = [
  { file_source = "bkrepo-release", files = ["release/app-1.4.tgz"] },
]
to = { hosts = ["web", "host_id:2001"], path = "/opt/app/", file_target_name = "app.tgz", account_id = 7 }

[[push]]
name = "by-id"
from = { file_source_id = 12, files = ["bucket/conf/"], }
to = { hosts = "db", path = "/etc/app/" }

[[push]]
name = "from-hosts"
from = { hosts = "2:10.0.9.[1:2]", files = ["/data/x.tgz"], account_id = 9 }
to = { hosts = "host_id:3001", path = "/data/" }
"#,
        );
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(body["bk_scope_type"], "biz_set");
        assert_eq!(body["bk_scope_id"], "9991001");
        assert_eq!(body["account_id"], 7);
        assert_eq!(body.get("account_alias"), None, "the id replaces the alias");
        assert_eq!(body["file_target_name"], "app.tgz");
        assert_eq!(
            body["file_source_list"],
            json!([{
                "file_list": ["release/app-1.4.tgz"],
                "file_type": 3,
                "file_source_code": "bkrepo-release"
            }])
        );
        assert_eq!(
            body["target_server"],
            json!({"host_id_list": [1001, 1002, 1003, 2001]})
        );
        let by_id = request_for(&plan, &plan.pushes[1]).to_json();
        assert_eq!(
            by_id["target_server"],
            json!({"ip_list": [
                {"bk_cloud_id": 0, "ip": "10.0.1.1"},
                {"bk_cloud_id": 0, "ip": "10.0.1.2"},
                {"bk_cloud_id": 0, "ip": "10.0.1.3"},
                {"bk_cloud_id": 0, "ip": "10.0.2.1"},
                {"bk_cloud_id": 0, "ip": "10.0.2.2"}
            ]})
        );
        assert_eq!(
            by_id["file_source_list"][0],
            json!({"file_list": ["bucket/conf/"], "file_type": 3, "file_source_id": 12})
        );
        assert_eq!(by_id["account_alias"], "root");
        let from_hosts = request_for(&plan, &plan.pushes[2]).to_json();
        assert_eq!(
            from_hosts["file_source_list"][0],
            json!({
                "file_list": ["/data/x.tgz"],
                "account": {"id": 9},
                "server": {"ip_list": [
                    {"bk_cloud_id": 2, "ip": "10.0.9.1"},
                    {"bk_cloud_id": 2, "ip": "10.0.9.2"}
                ]}
            })
        );
        assert_eq!(from_hosts["target_server"], json!({"host_id_list": [3001]}));
        for push in &plan.pushes {
            let JobRequest::V3(request) = request_for(&plan, push) else {
                panic!("a v3 plan builds v3 bodies");
            };
            let text = serde_json::to_string(&request).expect("json");
            let back: FastTransferFileRequest = serde_json::from_str(&text).expect("reads back");
            assert_eq!(back, request);
        }
    }

    /// A v2 plan's ranges expand in order into `ip_list`, and the scope goes beside
    /// `bk_biz_id` (which JOB reads only while `bkBizIdCompatible` is on).
    #[test]
    fn v2_body_expands_ranges_and_names_the_scope() {
        let plan = parsed(
            r#"
[plan]
name = "web"
bk_biz_id = 3
account = "root"

[[push]]
name = "to-web"
from = { hosts = "10.0.0.5", files = ["/data/app.tgz"] }
to = { hosts = ["2:10.0.[1:2].[10:11]", "10.0.3.0/31"], path = "/opt/app/" }
"#,
        );
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(body["bk_biz_id"], 3);
        assert_eq!(body["bk_scope_type"], "biz");
        assert_eq!(body["bk_scope_id"], "3");
        let hosts: Vec<String> = body["target_server"]["ip_list"]
            .as_array()
            .expect("ip_list")
            .iter()
            .map(|h| format!("{}:{}", h["bk_cloud_id"], h["ip"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(
            hosts,
            [
                "2:10.0.1.10",
                "2:10.0.1.11",
                "2:10.0.2.10",
                "2:10.0.2.11",
                "0:10.0.3.0",
                "0:10.0.3.1"
            ]
        );
    }
    /// `rolling` and `callback_url` reach JOB under their v3 names (`rolling_config` as
    /// `EsbRollingConfigDTO` reads it), and the callback under v2's `bk_callback_url`.
    #[test]
    fn rolling_and_callback_reach_the_bodies() {
        let text = |api: &str, rolling: &str| {
            format!(
                "[plan]\nname = \"r\"\nbk_biz_id = 1\naccount = \"root\"\napi = \"{api}\"\ncallback_url = \"https://ci.example/hook\"\n\n[[push]]\nname = \"app\"\nfrom = {{ hosts = \"10.0.0.1\", files = [\"/a/b\"] }}\nto = {{ hosts = \"10.0.1.[1:20]\", path = \"/srv/\" }}\nrolling = {rolling}\n"
            )
        };
        let plan = parsed(&text(
            "v3",
            "{ expression = \"1  30%\\u2028 100%\", mode = \"manual\" }"
                .replace("  ", " ")
                .as_str(),
        ));
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(body["callback_url"], "https://ci.example/hook");
        assert_eq!(body["rolling_config"]["type"], 1);
        assert_eq!(body["rolling_config"]["mode"], 3);
        assert_eq!(body["rolling_config"]["expression"], "1 30% 100%");
        assert!(body["rolling_config"].get("file_source").is_none());

        let plan = parsed(&text(
            "v3",
            "{ sources_per_batch = 2, mode = \"ignore-failure\" }",
        ));
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(
            body["rolling_config"],
            json!({"type": 2, "mode": 2, "file_source": {"max_execute_object_num_in_batch": 2}})
        );

        let plan = parsed(&text("v2", "{ expression = \"5\", max_failed = 1 }"));
        let body = request_for(&plan, &plan.pushes[0]).to_json();
        assert_eq!(body["bk_callback_url"], "https://ci.example/hook");
        assert!(
            body.get("rolling_config").is_none(),
            "v2 has no rolling: the plan cuts batches"
        );
    }
}

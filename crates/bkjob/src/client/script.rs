//! Script jobs (`fast_execute_script`) run and read the same way for v2 and v3: one call
//! submits the script to a set of hosts ([`Client::execute_script`]), the neutral status
//! calls follow the job like a transfer's, and [`Client::script_results`] reads each host's
//! status, exit code and output once it has finished (v2: one log call; v3: one status call
//! and batches of 500 hosts' logs).
//!
//! Submitting a script is a submission like a transfer's: it is re-sent only when JOB
//! provably did not act on it (see the client's module docs). A read-only script (the
//! checksum script of [`crate::script`]) may simply be submitted again by the caller when
//! the outcome is unknown.

use std::collections::BTreeMap;

use super::{ApiError, Client, JobKey, Kind, to_body};
use crate::ApiVersion;
use crate::common::{IpHost, scope_for_biz};
use crate::routes::Route;
use crate::script::{FileFacts, language, parse_checksum_output};
use crate::status::HostStatus;
use crate::v2::{FastExecuteScriptRequest, JobExecuteData, ServerV2};
use crate::v3::{BatchIpLogRequest, FastExecuteScriptV3Request, ServerV3};

/// How many hosts one `batch_get_job_instance_ip_log` call may name.
const BATCH_LOG_HOSTS: usize = 500;

/// A shell script to run on hosts, as a caller describes it (the body is built here, for
/// the family the plan uses).
#[derive(Debug, Clone, Copy)]
pub struct ScriptRequest<'a> {
    /// The API family.
    pub api: ApiVersion,
    /// Business.
    pub bk_biz_id: i64,
    /// The job's name in JOB's history.
    pub task_name: &'a str,
    /// The script's text (a shell script; sent base64-encoded).
    pub script: &'a str,
    /// Execution account alias on the hosts.
    pub account: &'a str,
    /// Seconds; JOB's default (7200) when `None`.
    pub timeout_s: Option<u32>,
    /// The hosts.
    pub hosts: &'a [IpHost],
}

/// One host's end of a script job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptResult {
    /// The host (with its `bk_host_id` when JOB gave one).
    pub host: IpHost,
    /// Its status (9 success, 104 non-zero exit, 310 agent abnormal, ...).
    pub status: HostStatus,
    /// The script's exit code, when it ran.
    pub exit_code: Option<i64>,
    /// What it printed (stdout and stderr), unescaped and scrubbed of the credentials.
    pub output: String,
}

impl ScriptResult {
    /// What the checksum script ([`crate::script::checksum_script`]) found on this host, or
    /// why nothing can be said: the host did not run it (its agent, its account, a timeout:
    /// JOB's status says which), or what it printed is not the script's.
    pub fn checksum_facts(&self) -> Result<BTreeMap<String, FileFacts>, String> {
        if !self.status.is_success() {
            let last = self.output.lines().rev().find(|l| !l.trim().is_empty());
            return Err(match last {
                Some(line) => format!("{} on the host: {}", self.status, line.trim()),
                None => format!("{} on the host", self.status),
            });
        }
        parse_checksum_output(&self.output).map_err(|e| e.to_string())
    }
}

impl Client {
    /// v2 `fast_execute_script`, exactly the body given.
    pub async fn execute_script_v2(
        &self,
        request: &FastExecuteScriptRequest,
    ) -> Result<JobExecuteData, ApiError> {
        self.call(Route::FastExecuteScriptV2, Kind::Submit, to_body(request)?)
            .await
    }

    /// v3 `fast_execute_script`, exactly the body given.
    pub async fn execute_script_v3(
        &self,
        request: &FastExecuteScriptV3Request,
    ) -> Result<JobExecuteData, ApiError> {
        self.call(Route::FastExecuteScriptV3, Kind::Submit, to_body(request)?)
            .await
    }

    /// Submits a shell script on the request's family; the job's key follows it with the
    /// neutral calls ([`Client::job_status`]) and [`Client::script_results`].
    pub async fn execute_script(&self, request: &ScriptRequest<'_>) -> Result<JobKey, ApiError> {
        let content = crate::script::encode_content(request.script);
        let task_name = Some(request.task_name.to_owned());
        let answer = match request.api {
            ApiVersion::V2 => {
                let body = FastExecuteScriptRequest {
                    bk_biz_id: request.bk_biz_id,
                    task_name,
                    script_content: content,
                    script_type: language::SHELL,
                    script_param: None,
                    is_param_sensitive: None,
                    script_timeout: request.timeout_s,
                    account: request.account.to_owned(),
                    target_server: ServerV2 {
                        ip_list: plain_hosts(request.hosts),
                        ..ServerV2::default()
                    },
                    bk_callback_url: None,
                };
                self.execute_script_v2(&body).await?
            }
            ApiVersion::V3 => {
                let (host_id_list, ip_list) = v3_hosts(request.hosts);
                let body = FastExecuteScriptV3Request {
                    bk_scope_type: scope_for_biz(request.bk_biz_id).as_str().to_owned(),
                    bk_scope_id: request.bk_biz_id.to_string(),
                    task_name,
                    script_content: content,
                    script_language: language::SHELL,
                    script_param: None,
                    is_param_sensitive: None,
                    timeout: request.timeout_s,
                    account_id: None,
                    account_alias: Some(request.account.to_owned()),
                    target_server: ServerV3 {
                        host_id_list,
                        ip_list,
                        ..ServerV3::default()
                    },
                    callback_url: None,
                };
                self.execute_script_v3(&body).await?
            }
        };
        Ok(JobKey {
            api: request.api,
            bk_biz_id: request.bk_biz_id,
            job_instance_id: answer.job_instance_id,
            step_instance_id: answer.step_instance_id,
        })
    }

    /// Every target host's status, exit code and output of a script job (call it once the
    /// job has finished: a host still running has no exit code and part of its output).
    pub async fn script_results(&self, job: &JobKey) -> Result<Vec<ScriptResult>, ApiError> {
        match job.api {
            ApiVersion::V2 => self.script_results_v2(job).await,
            ApiVersion::V3 => self.script_results_v3(job).await,
        }
    }

    /// v2's job log holds everything: status groups, exit codes, HTML-escaped output.
    async fn script_results_v2(&self, job: &JobKey) -> Result<Vec<ScriptResult>, ApiError> {
        let steps = self.log_v2(job.bk_biz_id, job.job_instance_id).await?;
        let mut out = Vec::new();
        for group in steps.into_iter().flat_map(|step| step.step_results) {
            for log in group.ip_logs {
                out.push(ScriptResult {
                    host: IpHost::new(log.bk_cloud_id, log.ip),
                    status: group.ip_status,
                    exit_code: log.exit_code,
                    output: crate::unescape_log(log.log_content.as_deref().unwrap_or_default()),
                });
            }
        }
        Ok(out)
    }

    /// v3: the status names the hosts with their exit codes; their output comes in batches
    /// of 500, by host id where JOB gave one.
    async fn script_results_v3(&self, job: &JobKey) -> Result<Vec<ScriptResult>, ApiError> {
        let scope = scope_for_biz(job.bk_biz_id);
        let status = self
            .status_v3(
                scope.as_str(),
                &job.bk_biz_id.to_string(),
                job.job_instance_id,
                true,
            )
            .await?;
        let Some(step) = status.step_instance_list.first() else {
            return Ok(Vec::new());
        };
        let mut results: Vec<ScriptResult> = step
            .step_ip_result_list
            .iter()
            .flatten()
            .map(|h| ScriptResult {
                host: IpHost {
                    bk_cloud_id: h.bk_cloud_id,
                    ip: if h.ip.is_empty() {
                        h.ipv6.clone()
                    } else {
                        h.ip.clone()
                    },
                    bk_host_id: h.bk_host_id,
                },
                status: h.status,
                exit_code: h.exit_code,
                output: String::new(),
            })
            .collect();
        let hosts: Vec<IpHost> = results.iter().map(|r| r.host.clone()).collect();
        let (by_id, by_ip): (Vec<&IpHost>, Vec<&IpHost>) =
            hosts.iter().partition(|h| h.bk_host_id.is_some());
        let request = |ids: Option<Vec<i64>>, ips: Option<Vec<IpHost>>| BatchIpLogRequest {
            bk_scope_type: scope.as_str().to_owned(),
            bk_scope_id: job.bk_biz_id.to_string(),
            job_instance_id: job.job_instance_id,
            step_instance_id: step.step_instance_id,
            host_id_list: ids,
            ip_list: ips,
        };
        let mut requests = Vec::new();
        for chunk in by_id.chunks(BATCH_LOG_HOSTS) {
            requests.push(request(
                Some(chunk.iter().filter_map(|h| h.bk_host_id).collect()),
                None,
            ));
        }
        let by_ip: Vec<IpHost> = by_ip
            .into_iter()
            .filter(|h| !h.ip.is_empty())
            .map(|h| IpHost::new(h.bk_cloud_id, h.ip.clone()))
            .collect();
        for chunk in by_ip.chunks(BATCH_LOG_HOSTS) {
            requests.push(request(None, Some(chunk.to_vec())));
        }
        for request in requests {
            let logs = self.batch_ip_log_v3(&request).await?;
            for log in logs.script_task_logs {
                let found =
                    results
                        .iter_mut()
                        .find(|r| match (r.host.bk_host_id, log.bk_host_id) {
                            (Some(a), Some(b)) => a == b,
                            _ => r.host.bk_cloud_id == log.bk_cloud_id && r.host.ip == log.ip,
                        });
                if let Some(result) = found {
                    result.output = log.log_content.unwrap_or_default();
                }
            }
        }
        Ok(results)
    }
}

/// v2's `ip_list`: cloud and address only.
fn plain_hosts(hosts: &[IpHost]) -> Vec<IpHost> {
    hosts
        .iter()
        .map(|h| IpHost::new(h.bk_cloud_id, h.ip.clone()))
        .collect()
}

/// v3's `target_server`: the hosts by id when every one has an id (JOB lets `host_id_list`
/// win over `ip_list`, so the two are never mixed), else by cloud and address.
fn v3_hosts(hosts: &[IpHost]) -> (Vec<i64>, Vec<IpHost>) {
    let ids: Option<Vec<i64>> = hosts.iter().map(|h| h.bk_host_id).collect();
    match ids {
        Some(ids) if !ids.is_empty() => (ids, Vec::new()),
        _ => (Vec::new(), plain_hosts(hosts)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::{ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth, WITHHELD};

    fn client(server: &MockServer) -> Client {
        Client::new(
            Endpoint::parse(&server.uri(), false).expect("url"),
            Credentials::new("app", "secret-xyz", UserAuth::Username("admin".into())),
            ClientConfig {
                connect_timeout: Duration::from_millis(500),
                request_timeout: Duration::from_millis(500),
                retry: RetryPolicy::default(),
            },
        )
        .expect("client")
    }

    fn ok(data: Value) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "result": true, "code": 0, "message": "", "data": data, "request_id": "r"
        }))
    }

    #[tokio::test]
    async fn v3_bodies_carry_the_script_base64_and_the_hosts_by_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/c/compapi/v2/jobv3/fast_execute_script/"))
            .and(body_partial_json(json!({
                "bk_scope_type": "biz", "bk_scope_id": "2", "task_name": "verify",
                "script_content": "ZWNobyBoaQo=", "script_language": 1, "timeout": 30,
                "account_alias": "root", "target_server": {"host_id_list": [7, 8]},
            })))
            .respond_with(ok(
                json!({"job_instance_id": 10, "job_instance_name": "verify", "step_instance_id": 11}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let hosts = [
            IpHost {
                bk_host_id: Some(7),
                ..IpHost::new(0, "10.0.0.1")
            },
            IpHost {
                bk_host_id: Some(8),
                ..IpHost::new(0, "10.0.0.2")
            },
        ];
        let job = client(&server)
            .execute_script(&ScriptRequest {
                api: ApiVersion::V3,
                bk_biz_id: 2,
                task_name: "verify",
                script: "echo hi\n",
                account: "root",
                timeout_s: Some(30),
                hosts: &hosts,
            })
            .await
            .expect("submitted");
        assert_eq!(job.job_instance_id, 10);
        assert_eq!(job.step_instance_id, Some(11));
    }

    #[tokio::test]
    async fn v3_results_join_status_and_logs_and_scrub_secrets() {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/jobv3/get_job_instance_status/"))
            .respond_with(ok(json!({"finished": true,
                "job_instance": {"job_instance_id": 10, "status": 4},
                "step_instance_list": [{"step_instance_id": 11, "status": 4, "step_ip_result_list": [
                    {"bk_host_id": 7, "ip": "10.0.0.1", "bk_cloud_id": 0, "status": 9, "exit_code": 0},
                    {"bk_host_id": 8, "ip": "10.0.0.2", "bk_cloud_id": 0, "status": 104, "exit_code": 3},
                ]}]})))
            .mount(&server)
            .await;
        Mock::given(path("/api/c/compapi/v2/jobv3/batch_get_job_instance_ip_log/"))
            .and(body_partial_json(json!({"host_id_list": [7, 8], "step_instance_id": 11})))
            .respond_with(ok(json!({"log_type": 1, "file_task_logs": null, "script_task_logs": [
                {"bk_host_id": 8, "bk_cloud_id": 0, "ip": "10.0.0.2", "log_content": "token secret-xyz\n"},
                {"bk_host_id": 7, "bk_cloud_id": 0, "ip": "10.0.0.1", "log_content": "fine\n"},
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        let job = JobKey {
            api: ApiVersion::V3,
            bk_biz_id: 2,
            job_instance_id: 10,
            step_instance_id: Some(11),
        };
        let results = client(&server).script_results(&job).await.expect("results");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].output, "fine\n");
        assert_eq!(results[0].exit_code, Some(0));
        assert_eq!(results[1].status, HostStatus::ScriptNotZeroExitCode);
        assert_eq!(results[1].exit_code, Some(3));
        assert!(
            !results[1].output.contains("secret-xyz"),
            "{}",
            results[1].output
        );
        assert!(
            results[1].output.contains(WITHHELD),
            "{}",
            results[1].output
        );
    }

    #[test]
    fn checksum_facts_say_why_a_host_has_none() {
        let result = |status, output: &str| ScriptResult {
            host: IpHost::new(0, "10.0.0.1"),
            status,
            exit_code: None,
            output: output.into(),
        };
        let read = result(HostStatus::Success, "plan-checksum v1\nsize 3 /a\n")
            .checksum_facts()
            .expect("read");
        assert_eq!(read["/a"].size, Some(3));
        assert_eq!(
            result(HostStatus::GseAgentError, "Agent is abnormal\n").checksum_facts(),
            Err("310 Abnormal Agent on the host: Agent is abnormal".into())
        );
        assert_eq!(
            result(HostStatus::ScriptTimeout, "").checksum_facts(),
            Err("102 Script execution timeout on the host".into())
        );
        assert!(
            result(HostStatus::Success, "hello\n")
                .checksum_facts()
                .is_err()
        );
    }

    #[tokio::test]
    async fn v2_results_come_from_the_job_log_unescaped() {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/job/get_job_instance_log/"))
            .respond_with(ok(
                json!([{"is_finished": true, "step_instance_id": 11, "status": 3,
                "step_results": [{"ip_status": 9, "tag": "", "ip_logs": [
                    {"bk_cloud_id": 0, "ip": "10.0.0.1", "exit_code": 0,
                     "log_content": "a &amp;&amp; b &lt;c&gt; secret-xyz"}]}]}]),
            ))
            .mount(&server)
            .await;
        let job = JobKey {
            api: ApiVersion::V2,
            bk_biz_id: 2,
            job_instance_id: 10,
            step_instance_id: None,
        };
        let results = client(&server).script_results(&job).await.expect("results");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].host, IpHost::new(0, "10.0.0.1"));
        assert_eq!(results[0].status, HostStatus::Success);
        assert!(
            results[0].output.starts_with("a && b <c> "),
            "{}",
            results[0].output
        );
        assert!(!results[0].output.contains("secret-xyz"));
    }
}

//! Version-neutral calls: one job asked about, terminated or started the same way whichever
//! API family (v2 `job/`, v3 `jobv3/`) created it. The two families answer in different
//! shapes (v2 groups a step's hosts in blocks and reports a host's GSE code only in its log,
//! v3 reports it in the status; v2 has one log call for the whole job, v3 one per host or a
//! batch of 500); what comes out here is one shape, [`Snapshot`], [`HostLog`] and
//! [`FileProgress`].

use std::collections::{BTreeMap, BTreeSet};

use super::{ApiError, Client, StartAnswer};
use crate::ApiVersion;
use crate::common::{IpHost, scope_for_biz};
use crate::file_log::FileProgress;
use crate::status::{FileMode, HostStatus, RunStatus};
use crate::v2::{OperateJobInstanceRequest, OperationCode};
use crate::v3::BatchIpLogRequest;

/// How many hosts one `batch_get_job_instance_ip_log` call may name.
pub(super) const BATCH_LOG_HOSTS: usize = 500;

/// A job JOB created, as the neutral calls name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobKey {
    /// The family it was created with (decides which status and log APIs apply).
    pub api: ApiVersion,
    /// Business.
    pub bk_biz_id: i64,
    /// The job.
    pub job_instance_id: i64,
    /// Its file step: v3 returns it at submission, v2 only in the status.
    pub step_instance_id: Option<i64>,
}

/// One target host in a status answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    /// CMDB host id, when JOB gives one (v3 does; v2 does not).
    pub bk_host_id: Option<i64>,
    /// BK-Net.
    pub bk_cloud_id: i64,
    /// Address: the IPv4 one, or the IPv6 one of a host that has no IPv4 address (empty when
    /// JOB sent neither).
    pub ip: String,
    /// Status.
    pub status: HostStatus,
    /// GSE code (v3 reports it in the status; v2 only in the log).
    pub error_code: Option<i64>,
}

impl HostState {
    /// What names the host uniquely: `host_id:<bk_host_id>` when JOB gave an id, else
    /// `cloud:ip`. Two IPv6-only hosts (whose `ip` JOB leaves empty) never share a key.
    pub fn key(&self) -> String {
        match self.bk_host_id {
            Some(id) => host_id_key(id),
            None => self.address(),
        }
    }

    /// `cloud:ip`, `cloud:[v6]`, or the key when JOB sent no address: what people read.
    pub fn address(&self) -> String {
        if self.ip.is_empty() {
            return self
                .bk_host_id
                .map_or_else(|| format!("{}:", self.bk_cloud_id), host_id_key);
        }
        IpHost::new(self.bk_cloud_id, self.ip.clone()).to_string()
    }

    fn ip_host(&self) -> IpHost {
        IpHost {
            bk_cloud_id: self.bk_cloud_id,
            ip: self.ip.clone(),
            bk_host_id: self.bk_host_id,
        }
    }
}

/// `host_id:1001`, the form plans write a host id in.
fn host_id_key(id: i64) -> String {
    format!("host_id:{id}")
}

/// JOB's v3 address fields as one: `ip`, else `ipv6` (an IPv6-only host).
pub(super) fn v3_address(ip: &str, ipv6: &str) -> String {
    if ip.is_empty() { ipv6 } else { ip }.to_owned()
}

/// The `batch_get_job_instance_ip_log` calls that ask about `hosts` in step `step`, each with
/// the hosts it names. JOB names a host by `bk_host_id` where it gave one (`host_id_list` wins
/// over `ip_list` in one call, so the two kinds go in separate calls); a host with neither an
/// id nor an address cannot be asked about, and a blank IP would fail its batch.
pub(super) fn batch_log_requests<'h>(
    job: &JobKey,
    step: i64,
    hosts: &'h [HostState],
) -> Vec<(Vec<&'h HostState>, BatchIpLogRequest)> {
    let (by_id, by_ip): (Vec<&HostState>, Vec<&HostState>) =
        hosts.iter().partition(|h| h.bk_host_id.is_some());
    let by_ip: Vec<&HostState> = by_ip.into_iter().filter(|h| !h.ip.is_empty()).collect();
    let scope = scope_for_biz(job.bk_biz_id);
    let request = |chunk: &[&HostState], by_host_id: bool| BatchIpLogRequest {
        bk_scope_type: scope.as_str().to_owned(),
        bk_scope_id: job.bk_biz_id.to_string(),
        job_instance_id: job.job_instance_id,
        step_instance_id: step,
        host_id_list: by_host_id.then(|| chunk.iter().filter_map(|h| h.bk_host_id).collect()),
        ip_list: (!by_host_id).then(|| {
            chunk
                .iter()
                .map(|h| IpHost::new(h.bk_cloud_id, h.ip.clone()))
                .collect()
        }),
    };
    by_id
        .chunks(BATCH_LOG_HOSTS)
        .map(|c| (c, true))
        .chain(by_ip.chunks(BATCH_LOG_HOSTS).map(|c| (c, false)))
        .map(|(chunk, by_host_id)| (chunk.to_vec(), request(chunk, by_host_id)))
        .collect()
}

/// Which of the hosts a batch log call named JOB answered about: by id where both sides have
/// one, else by BK-Net and address.
pub(super) fn asked_host<'h>(
    chunk: &[&'h HostState],
    host_id: Option<i64>,
    cloud: i64,
    address: &str,
) -> Option<&'h HostState> {
    chunk
        .iter()
        .copied()
        .find(|h| match (h.bk_host_id, host_id) {
            (Some(asked), Some(got)) => asked == got,
            _ => h.bk_cloud_id == cloud && h.ip == address,
        })
}

/// A job's state at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// JOB's `is_finished` (v2) / `finished` (v3): the only signal to stop polling.
    pub finished: bool,
    /// Job status (`Unknown(0)` when JOB sent none).
    pub status: RunStatus,
    /// The file step, when known.
    pub step_instance_id: Option<i64>,
    /// Target hosts of the file step.
    pub hosts: Vec<HostState>,
}

/// One host's log, for failure reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostLog {
    /// GSE code from the log API (v2 reports it only here).
    pub error_code: Option<i64>,
    /// The log text, HTML-unescaped (v2) and scrubbed of credentials.
    pub content: String,
}

impl Client {
    /// One status poll with the file step's per-host results.
    pub async fn job_status(&self, job: &JobKey) -> Result<Snapshot, ApiError> {
        match job.api {
            ApiVersion::V2 => self.job_status_v2(job).await,
            ApiVersion::V3 => self.job_status_v3(job).await,
        }
    }

    async fn job_status_v2(&self, job: &JobKey) -> Result<Snapshot, ApiError> {
        let answer = self.status_v2(job.bk_biz_id, job.job_instance_id).await?;
        let step = answer
            .blocks
            .iter()
            .flat_map(|b| b.step_instances.iter())
            .next();
        let hosts = step.map(|st| {
            st.step_ip_status
                .iter()
                .map(|h| HostState {
                    bk_host_id: None,
                    bk_cloud_id: h.bk_cloud_id,
                    ip: h.ip.clone(),
                    status: h.status,
                    error_code: None,
                })
                .collect()
        });
        Ok(Snapshot {
            finished: answer.is_finished,
            status: answer
                .job_instance
                .as_ref()
                .map_or(RunStatus::Unknown(0), |j| j.status),
            step_instance_id: step.map(|st| st.step_instance_id),
            hosts: hosts.unwrap_or_default(),
        })
    }

    async fn job_status_v3(&self, job: &JobKey) -> Result<Snapshot, ApiError> {
        let scope = scope_for_biz(job.bk_biz_id);
        let answer = self
            .status_v3(
                scope.as_str(),
                &job.bk_biz_id.to_string(),
                job.job_instance_id,
                true,
            )
            .await?;
        let step = answer.step_instance_list.first();
        let hosts = step
            .and_then(|st| st.step_ip_result_list.as_ref())
            .map(|list| {
                list.iter()
                    .map(|h| HostState {
                        bk_host_id: h.bk_host_id,
                        bk_cloud_id: h.bk_cloud_id,
                        ip: v3_address(&h.ip, &h.ipv6),
                        status: h.status,
                        error_code: h.error_code,
                    })
                    .collect()
            });
        Ok(Snapshot {
            finished: answer.finished,
            status: answer
                .job_instance
                .as_ref()
                .map_or(RunStatus::Unknown(0), |j| j.status),
            step_instance_id: step.map(|st| st.step_instance_id),
            hosts: hosts.unwrap_or_default(),
        })
    }

    /// The logs of these hosts, by `cloud:ip` (v2: one call for the whole job; v3: batches
    /// of 500 hosts, nothing before the file step is known).
    pub async fn host_logs(
        &self,
        job: &JobKey,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        match job.api {
            ApiVersion::V2 => self.host_logs_v2(job, hosts).await,
            ApiVersion::V3 => self.host_logs_v3(job, hosts).await,
        }
    }

    /// v2 has one log call for the whole job: the lines of each of `hosts`, unescaped.
    async fn host_logs_v2(
        &self,
        job: &JobKey,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        let steps = self.log_v2(job.bk_biz_id, job.job_instance_id).await?;
        let wanted: BTreeSet<String> = hosts.iter().map(HostState::key).collect();
        let mut out = BTreeMap::new();
        for log in steps
            .into_iter()
            .flat_map(|step| step.step_results)
            .flat_map(|group| group.ip_logs)
        {
            let key = IpHost::new(log.bk_cloud_id, log.ip.clone()).to_string();
            if wanted.contains(&key) {
                let content = crate::unescape_log(log.log_content.as_deref().unwrap_or_default());
                out.insert(
                    key,
                    HostLog {
                        error_code: log.error_code,
                        content,
                    },
                );
            }
        }
        Ok(out)
    }

    async fn host_logs_v3(
        &self,
        job: &JobKey,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        let mut out = BTreeMap::new();
        let Some(step) = job.step_instance_id else {
            return Ok(out);
        };
        for (chunk, request) in batch_log_requests(job, step, hosts) {
            let logs = self.batch_ip_log_v3(&request).await?;
            // A file step's hosts, each with its file-log lines; a script step's, each with
            // its output.
            let files = logs.file_task_logs.into_iter().map(|answered| {
                let content: String = answered
                    .file_logs
                    .iter()
                    .filter_map(|f| f.log_content.as_deref())
                    .collect();
                let address = v3_address(&answered.ip, &answered.ipv6);
                (answered.bk_host_id, answered.bk_cloud_id, address, content)
            });
            let scripts = logs.script_task_logs.into_iter().map(|answered| {
                let address = v3_address(&answered.ip, &answered.ipv6);
                let content = answered.log_content.unwrap_or_default();
                (answered.bk_host_id, answered.bk_cloud_id, address, content)
            });
            for (host_id, cloud, address, content) in files.chain(scripts) {
                if let Some(host) = asked_host(&chunk, host_id, cloud, &address) {
                    out.insert(
                        host.key(),
                        HostLog {
                            error_code: None,
                            content,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// The downloads of a running job as one log call can read them, per host: v2's job log
    /// covers every one of `hosts`; on v3 one host stands for the push (a running one, else
    /// the first): its targets share the speed limits and the files, and one small
    /// `get_job_instance_ip_log` costs the same whatever the push's size. Nothing is read
    /// (and nothing returned) on v3 before the file step is known.
    pub async fn file_progress(
        &self,
        job: &JobKey,
        hosts: &[HostState],
    ) -> Result<Vec<Vec<FileProgress>>, ApiError> {
        match job.api {
            ApiVersion::V2 => Ok(self
                .host_logs_v2(job, hosts)
                .await?
                .values()
                .map(|log| FileProgress::from_log(&log.content))
                .collect()),
            ApiVersion::V3 => self.file_progress_v3(job, hosts).await,
        }
    }

    async fn file_progress_v3(
        &self,
        job: &JobKey,
        hosts: &[HostState],
    ) -> Result<Vec<Vec<FileProgress>>, ApiError> {
        let Some(step) = job.step_instance_id else {
            return Ok(Vec::new());
        };
        let Some(host) = hosts
            .iter()
            .find(|h| h.status == HostStatus::Running)
            .or_else(|| hosts.first())
        else {
            return Ok(Vec::new());
        };
        let scope = scope_for_biz(job.bk_biz_id);
        let log = self
            .ip_log_v3(
                scope.as_str(),
                &job.bk_biz_id.to_string(),
                job.job_instance_id,
                step,
                &host.ip_host(),
            )
            .await?;
        let files = log
            .file_logs
            .iter()
            .filter(|f| f.mode == FileMode::Download)
            .map(|f| {
                FileProgress::from_v3_entry(
                    f.status,
                    f.size.as_deref(),
                    f.speed.as_deref(),
                    f.process.as_deref(),
                    f.log_content.as_deref(),
                )
            })
            .collect();
        Ok(vec![files])
    }

    /// `operate_job_instance` code 1 on the job's family.
    pub async fn terminate(&self, job: &JobKey) -> Result<(), ApiError> {
        let mut request = OperateJobInstanceRequest {
            bk_biz_id: None,
            bk_scope_type: None,
            bk_scope_id: None,
            job_instance_id: job.job_instance_id,
            operation_code: OperationCode::Terminate.code(),
        };
        match job.api {
            ApiVersion::V2 => {
                request.bk_biz_id = Some(job.bk_biz_id);
                self.operate_v2(&request).await.map(|_| ())
            }
            ApiVersion::V3 => {
                request.bk_scope_type = Some(scope_for_biz(job.bk_biz_id).as_str().to_owned());
                request.bk_scope_id = Some(job.bk_biz_id.to_string());
                self.operate_v3(&request).await.map(|_| ())
            }
        }
    }

    /// `operate_job_instance` code 2 for a job created with `start_task=false` (v3's, the
    /// family that has two-phase submission): see [`Client::start_v3`].
    pub async fn start(&self, job: &JobKey) -> Result<StartAnswer, ApiError> {
        let scope = scope_for_biz(job.bk_biz_id);
        self.start_v3(
            scope.as_str(),
            &job.bk_biz_id.to_string(),
            job.job_instance_id,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use wiremock::matchers::{body_partial_json, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::client::{ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth};

    fn client(server: &MockServer, gateway: bool) -> Client {
        let base = if gateway {
            format!("{}/api/bk-job/prod", server.uri())
        } else {
            server.uri()
        };
        let config = ClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(500),
            retry: RetryPolicy {
                max_attempts: 2,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_total: Duration::from_secs(5),
            },
        };
        let creds = Credentials::new("app", "secret", UserAuth::Username("admin".into()));
        Client::new(Endpoint::parse(&base, false).expect("url"), creds, config).expect("client")
    }

    fn ok(data: Value) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "result": true, "code": 0, "message": "", "data": data, "request_id": "r"
        }))
    }

    fn job(api: ApiVersion, step: Option<i64>) -> JobKey {
        JobKey {
            api,
            bk_biz_id: 2,
            job_instance_id: 7,
            step_instance_id: step,
        }
    }

    fn host(ip: &str, status: HostStatus) -> HostState {
        HostState {
            bk_host_id: None,
            bk_cloud_id: 0,
            ip: ip.into(),
            status,
            error_code: None,
        }
    }

    #[tokio::test]
    async fn both_families_answer_a_status_in_one_shape() {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
            .and(body_partial_json(
                json!({"bk_biz_id": 2, "job_instance_id": 7}),
            ))
            .respond_with(ok(json!({
                "is_finished": true,
                "job_instance": {"job_instance_id": 7, "status": 4},
                "blocks": [{"step_instances": [{"step_instance_id": 70, "status": 4,
                    "step_ip_status": [{"ip": "10.0.0.1", "bk_cloud_id": 0, "status": 320}]}]}],
            })))
            .mount(&server)
            .await;
        Mock::given(path("/api/bk-job/prod/api/v3/get_job_instance_status"))
            .and(query_param("job_instance_id", "7"))
            .and(query_param("bk_scope_type", "biz"))
            .and(query_param("return_ip_result", "true"))
            .respond_with(ok(json!({
                "finished": false,
                "job_instance": {"job_instance_id": 7, "status": 2},
                "step_instance_list": [{"step_instance_id": 71, "status": 2,
                    "step_ip_result_list": [{"ip": "10.0.0.1", "bk_cloud_id": 0, "status": 7,
                        "error_code": 115}]}],
            })))
            .mount(&server)
            .await;
        let v2 = client(&server, false)
            .job_status(&job(ApiVersion::V2, None))
            .await
            .expect("v2 status");
        assert_eq!(
            v2,
            Snapshot {
                finished: true,
                status: RunStatus::Fail,
                step_instance_id: Some(70),
                hosts: vec![HostState {
                    error_code: None,
                    ..host("10.0.0.1", HostStatus::GseFileError)
                }],
            }
        );
        let v3 = client(&server, true)
            .job_status(&job(ApiVersion::V3, Some(71)))
            .await
            .expect("v3 status");
        assert_eq!(
            v3,
            Snapshot {
                finished: false,
                status: RunStatus::Running,
                step_instance_id: Some(71),
                hosts: vec![HostState {
                    error_code: Some(115),
                    ..host("10.0.0.1", HostStatus::Running)
                }],
            }
        );
    }

    #[tokio::test]
    async fn v2_host_logs_are_the_asked_hosts_unescaped_with_their_codes() {
        let server = MockServer::start().await;
        let ip_log = |ip: &str, text: &str| json!({"ip": ip, "bk_cloud_id": 0, "error_code": 104, "log_content": text});
        Mock::given(path("/api/c/compapi/v2/job/get_job_instance_log/"))
            .respond_with(ok(
                json!([{"is_finished": true, "step_instance_id": 70, "status": 4,
                "step_results": [{"ip_status": 320, "ip_logs": [
                    ip_log("10.0.0.1", "a &lt;b&gt; &amp; c"),
                    ip_log("10.0.0.2", "not asked"),
                ]}]}]),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let logs = client(&server, false)
            .host_logs(
                &job(ApiVersion::V2, None),
                &[host("10.0.0.1", HostStatus::GseFileError)],
            )
            .await
            .expect("logs");
        assert_eq!(
            logs,
            BTreeMap::from([(
                "0:10.0.0.1".to_owned(),
                HostLog {
                    error_code: Some(104),
                    content: "a <b> & c".into(),
                }
            )])
        );
    }

    #[tokio::test]
    async fn v3_host_logs_go_in_batches_of_500_and_wait_for_the_step() {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/jobv3/batch_get_job_instance_ip_log/"))
            .and(body_partial_json(json!({"step_instance_id": 71, "bk_scope_id": "2"})))
            .respond_with(ok(json!({"file_task_logs": [{"bk_cloud_id": 0, "ip": "10.0.0.1",
                "file_logs": [{"mode": 1, "log_content": "one\n"}, {"mode": 1, "log_content": "two\n"}]}]})))
            .expect(2)
            .mount(&server)
            .await;
        let hosts: Vec<HostState> = (0..501)
            .map(|n| host(&format!("10.0.{}.{}", n / 250, n % 250), HostStatus::Failed))
            .collect();
        let api = client(&server, false);
        let none = api
            .host_logs(&job(ApiVersion::V3, None), &hosts)
            .await
            .expect("no step yet");
        assert!(none.is_empty());
        let logs = api
            .host_logs(&job(ApiVersion::V3, Some(71)), &hosts)
            .await
            .expect("logs");
        assert_eq!(logs["0:10.0.0.1"].content, "one\ntwo\n");
        let sizes: Vec<usize> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).expect("json body");
                body["ip_list"].as_array().map_or(0, Vec::len)
            })
            .collect();
        assert_eq!(sizes, [500, 1]);
    }

    #[tokio::test]
    async fn ipv6_only_hosts_are_keyed_and_asked_for_by_host_id() {
        let server = MockServer::start().await;
        let result = |id: i64, v6: &str| {
            json!({"bk_host_id": id, "ip": "", "ipv6": v6,
            "bk_cloud_id": 0, "status": 11, "error_code": 117})
        };
        Mock::given(path("/api/c/compapi/v2/jobv3/get_job_instance_status/"))
            .respond_with(ok(json!({
                "finished": true,
                "job_instance": {"job_instance_id": 7, "status": 4},
                "step_instance_list": [{"step_instance_id": 71, "status": 4,
                    "step_ip_result_list": [result(1005, "fd00::1"), result(1006, "fd00::2")]}],
            })))
            .mount(&server)
            .await;
        Mock::given(path("/api/c/compapi/v2/jobv3/batch_get_job_instance_ip_log/"))
            .and(body_partial_json(json!({"host_id_list": [1005, 1006]})))
            .respond_with(ok(json!({"file_task_logs": [
                {"bk_host_id": 1006, "ip": "", "ipv6": "fd00::2", "file_logs": [{"mode": 1, "log_content": "two\n"}]},
                {"bk_host_id": 1005, "ip": "", "ipv6": "fd00::1", "file_logs": [{"mode": 1, "log_content": "one\n"}]},
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        let api = client(&server, false);
        let job = job(ApiVersion::V3, Some(71));
        let status = api.job_status(&job).await.expect("status");
        let keys: Vec<(String, String)> = status
            .hosts
            .iter()
            .map(|h| (h.key(), h.address()))
            .collect();
        assert_eq!(
            keys,
            [
                ("host_id:1005".to_owned(), "0:[fd00::1]".to_owned()),
                ("host_id:1006".to_owned(), "0:[fd00::2]".to_owned()),
            ]
        );
        let logs = api.host_logs(&job, &status.hosts).await.expect("logs");
        assert_eq!(logs["host_id:1005"].content, "one\n");
        assert_eq!(logs["host_id:1006"].content, "two\n");
        let bodies: Vec<Value> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().contains("batch_get"))
            .map(|r| serde_json::from_slice(&r.body).expect("json"))
            .collect();
        assert!(
            bodies.iter().all(|b| b.get("ip_list").is_none()),
            "{bodies:?}"
        );
    }

    #[tokio::test]
    async fn a_host_without_id_or_address_is_not_asked_about() {
        let server = MockServer::start().await;
        Mock::given(path(
            "/api/c/compapi/v2/jobv3/batch_get_job_instance_ip_log/",
        ))
        .respond_with(ok(json!({"file_task_logs": []})))
        .expect(0)
        .mount(&server)
        .await;
        let blank = host("", HostStatus::Failed);
        let logs = client(&server, false)
            .host_logs(&job(ApiVersion::V3, Some(71)), &[blank])
            .await
            .expect("nothing asked");
        assert!(logs.is_empty());
    }

    #[tokio::test]
    async fn v3_progress_reads_one_running_hosts_downloads() {
        let server = MockServer::start().await;
        let line = "[2026-01-01 12:00:01] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 25%\n";
        Mock::given(path("/api/c/compapi/v2/jobv3/get_job_instance_ip_log/"))
            .and(body_partial_json(
                json!({"ip": "10.0.0.2", "step_instance_id": 71}),
            ))
            .respond_with(ok(json!({"file_logs": [
                {"mode": 0, "status": 2, "log_content": line},
                {"mode": 1, "status": 3, "log_content": line},
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        let hosts = [
            host("10.0.0.1", HostStatus::Waiting),
            host("10.0.0.2", HostStatus::Running),
        ];
        let progress = client(&server, false)
            .file_progress(&job(ApiVersion::V3, Some(71)), &hosts)
            .await
            .expect("progress");
        assert_eq!(progress.len(), 1, "one host stands for the push");
        assert_eq!(progress[0].len(), 1, "downloads only");
        assert_eq!(progress[0][0].percent, Some(25.0));
    }

    #[tokio::test]
    async fn terminate_names_the_job_the_way_its_family_does() {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/job/operate_job_instance/"))
            .and(body_partial_json(
                json!({"bk_biz_id": 2, "job_instance_id": 7, "operation_code": 1}),
            ))
            .respond_with(ok(json!({"job_instance_id": 7})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/api/c/compapi/v2/jobv3/operate_job_instance/"))
            .and(body_partial_json(
                json!({"bk_scope_type": "biz", "bk_scope_id": "2",
                "job_instance_id": 7, "operation_code": 1}),
            ))
            .respond_with(ok(json!({"job_instance_id": 7})))
            .expect(1)
            .mount(&server)
            .await;
        let api = client(&server, false);
        api.terminate(&job(ApiVersion::V2, None))
            .await
            .expect("v2 terminate");
        api.terminate(&job(ApiVersion::V3, Some(71)))
            .await
            .expect("v3 terminate");
    }
}

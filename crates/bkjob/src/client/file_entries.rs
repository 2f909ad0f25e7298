//! The entries of a v3 file step's log, per host, as JOB holds them: each download of a
//! target with its source host, source path, destination path and size, each upload of a
//! source with its size. What verifying sizes compares (a download's size with its upload's),
//! read with `batch_get_job_instance_ip_log`, 500 hosts a call.

use std::collections::BTreeMap;

use super::neutral::BATCH_LOG_HOSTS;
use super::{ApiError, Client, JobKey};
use crate::HostState;
use crate::common::{IpHost, scope_for_biz};
use crate::v3::{BatchIpLogRequest, FileLogV3};

impl Client {
    /// v3: every file-log entry JOB holds for each of `hosts` in the job's file step, by
    /// [`HostState::key`] (a host JOB answers nothing for is absent). Nothing is read before
    /// the file step is known; hosts without an id or an address cannot be asked about.
    pub async fn file_log_entries_v3(
        &self,
        job: &JobKey,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, Vec<FileLogV3>>, ApiError> {
        let mut out: BTreeMap<String, Vec<FileLogV3>> = BTreeMap::new();
        let Some(step) = job.step_instance_id else {
            return Ok(out);
        };
        let (by_id, by_ip): (Vec<&HostState>, Vec<&HostState>) =
            hosts.iter().partition(|h| h.bk_host_id.is_some());
        let by_ip: Vec<&HostState> = by_ip.into_iter().filter(|h| !h.ip.is_empty()).collect();
        let scope = scope_for_biz(job.bk_biz_id);
        let calls = by_id
            .chunks(BATCH_LOG_HOSTS)
            .map(|c| (c, true))
            .chain(by_ip.chunks(BATCH_LOG_HOSTS).map(|c| (c, false)));
        for (chunk, by_host_id) in calls {
            let request = BatchIpLogRequest {
                bk_scope_type: scope.as_str().to_owned(),
                bk_scope_id: job.bk_biz_id.to_string(),
                job_instance_id: job.job_instance_id,
                step_instance_id: step,
                host_id_list: by_host_id
                    .then(|| chunk.iter().filter_map(|h| h.bk_host_id).collect()),
                ip_list: (!by_host_id).then(|| {
                    chunk
                        .iter()
                        .map(|h| IpHost::new(h.bk_cloud_id, h.ip.clone()))
                        .collect()
                }),
            };
            for answered in self.batch_ip_log_v3(&request).await?.file_task_logs {
                let address = if answered.ip.is_empty() {
                    &answered.ipv6
                } else {
                    &answered.ip
                };
                let asked = chunk
                    .iter()
                    .find(|h| match (h.bk_host_id, answered.bk_host_id) {
                        (Some(asked), Some(got)) => asked == got,
                        _ => h.bk_cloud_id == answered.bk_cloud_id && &h.ip == address,
                    });
                if let Some(host) = asked {
                    out.entry(host.key())
                        .or_default()
                        .extend(answered.file_logs);
                }
            }
        }
        Ok(out)
    }
}

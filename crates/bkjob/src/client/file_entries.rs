//! The entries of a v3 file step's log, per host, as JOB holds them: each download of a
//! target with its source host, source path, destination path and size, each upload of a
//! source with its size. What verifying sizes compares (a download's size with its upload's),
//! read with `batch_get_job_instance_ip_log`, 500 hosts a call.

use std::collections::BTreeMap;

use super::neutral::{asked_host, batch_log_requests, v3_address};
use super::{ApiError, Client, JobKey};
use crate::HostState;
use crate::v3::FileLogV3;

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
        for (chunk, request) in batch_log_requests(job, step, hosts) {
            for answered in self.batch_ip_log_v3(&request).await?.file_task_logs {
                let address = v3_address(&answered.ip, &answered.ipv6);
                let asked = asked_host(&chunk, answered.bk_host_id, answered.bk_cloud_id, &address);
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

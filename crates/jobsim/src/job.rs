//! One job's life on tokio's clock (§6), read top to bottom in [`run_job`]: it waits for
//! START, lists its hosts and files, runs one task per target host, ends on completion,
//! timeout or terminate, settles every host and file still open, and takes its final status
//! before JOB's callback is sent.

use std::sync::Arc;
use std::time::Duration;

use plan_bkjob::file_log::{FileLogLine, display_size};
use plan_bkjob::{FileMode, FileStatus, HostStatus, RunStatus, gse_code};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::engine::{Clock, Engine, FileLog, HostTask, Job, JobState};
use crate::host::run_host;
use crate::sources::{SourceFile, SourcePlan, plan_sources, target_dir};
use crate::world::{Agent, HostRef};

/// JOB's safety net for hosts GSE never reports on: they end as 15 this long after the
/// job's timeout.
const SILENT_HOST_GRACE: Duration = Duration::from_secs(300);

/// How the hosts' transfers ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every target host reported.
    Done,
    /// The job's timeout came first.
    TimedOut,
    /// A terminate came first.
    Stopped,
}

/// Runs a submitted job to its final status.
pub(crate) async fn run_job(engine: Arc<Engine>, job: Arc<Job>) {
    wait_for_start(&engine, &job).await;
    let deadline = start(&engine, &job);
    if job.spec.script.is_some() {
        // A `fast_execute_script` job: the same life, each host running the script.
        let outcome = crate::script::run_hosts(&engine, &job, deadline).await;
        let status = finish(&engine, &job, outcome);
        engine.job_finished();
        send_callback(&engine, &job, status);
        return;
    }
    let sources = expand_sources(&engine, &job).await;
    log_uploads(&engine.clock, &job, &sources);
    log_downloads(&engine.clock, &job, &sources);
    if job.spec.rolling.is_some() {
        // Batches, each judged by `rolling_config.mode`: see `rolling`.
        let first = crate::rolling::hosts_of(&job, 1);
        crate::rolling::run_from(engine, job, sources, 1, first).await;
        return;
    }
    let outcome = transfer(&engine, &job, sources, deadline).await;
    close_open_files(&engine.clock, &job);
    let status = finish(&engine, &job, outcome);
    engine.job_finished();
    send_callback(&engine, &job, status);
}

/// A rolling job the job store restored mid-way runs on from `batch`: that batch's hosts run
/// (again), earlier batches keep what they reached.
pub(crate) async fn resume_rolling(engine: Arc<Engine>, job: Arc<Job>, batch: usize) {
    let sources = expand_sources(&engine, &job).await;
    let hosts = crate::rolling::hosts_of(&job, batch);
    let now = engine.clock.now_ms();
    job.with(|s| crate::rolling::reset_hosts(s, &hosts, now));
    crate::rolling::run_from(engine, job, sources, batch, hosts).await;
}

/// A job created with `start_task=false` waits for START; any other starts by itself.
async fn wait_for_start(engine: &Engine, job: &Job) {
    if job.spec.start_task || engine.timings.ignore_start_task {
        tokio::time::sleep(engine.timings.start_delay).await;
    } else {
        job.start.notified().await;
    }
}

/// START: job and step 2, every target 5 (18 where no agent is installed). Returns the
/// job's deadline.
fn start(engine: &Engine, job: &Job) -> Instant {
    let now = engine.clock.now_ms();
    let world = &engine.world;
    job.with(|s| {
        s.set_status(RunStatus::Running);
        s.start_ms = Some(now);
        s.hosts = job
            .spec
            .targets
            .iter()
            .map(|host| {
                let not_installed = world.agent(host) == Agent::NotInstalled;
                HostTask {
                    host: host.clone(),
                    status: if not_installed {
                        HostStatus::AgentNotInstalled
                    } else {
                        HostStatus::Waiting
                    },
                    error_code: if not_installed {
                        gse_code::ERROR
                    } else {
                        gse_code::RUNNING
                    },
                    start_ms: Some(now),
                    end_ms: not_installed.then_some(now),
                    files: Vec::new(),
                    script: None,
                }
            })
            .collect();
    });
    // A configured maximum can be absurdly large; such a deadline simply never comes.
    Instant::now()
        .checked_add(Duration::from_secs(job.spec.timeout_s))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400))
}

/// Expands the sources on their hosts, off the async threads (directory reads block).
pub(crate) async fn expand_sources(engine: &Arc<Engine>, job: &Arc<Job>) -> Arc<Vec<SourcePlan>> {
    let world = engine.world.clone();
    let job = job.clone();
    let plans = tokio::task::spawn_blocking(move || plan_sources(&world, &job))
        .await
        .unwrap_or_default();
    Arc::new(plans)
}

/// Each source host's upload entries: waiting for what was found, failed with the reason for
/// what was not.
fn log_uploads(clock: &Clock, job: &Job, sources: &[SourcePlan]) {
    job.with(|s| {
        for source in sources {
            for file in source.files() {
                let mut entry = upload_entry(clock, &source.host, file);
                if let Some(code) = &source.pulled_from {
                    // JOB's file gateway pulls a third-party file onto its worker first
                    // (status 0, PULLING): the entry's log starts with the pull.
                    let detail = format!("Pulled from file source {code}");
                    let pulled =
                        FileLogLine::new(&entry.src_path, FileStatus::Pulling).detail(&detail);
                    entry.content = clock.stamp(&pulled) + &entry.content;
                }
                s.uploads.push(entry);
            }
        }
    });
}

fn upload_entry(clock: &Clock, src: &HostRef, file: SourceFile<'_>) -> FileLog {
    let (path, size, status, detail) = match file {
        SourceFile::Found(item) => (
            item.display.as_str(),
            Some(display_size(item.size)),
            FileStatus::Waiting,
            "",
        ),
        SourceFile::Failed { entry, failure } => {
            (entry, None, FileStatus::Failed, failure.detail.as_str())
        }
    };
    let mut line = FileLogLine::new(path, status).detail(detail);
    if let Some(size) = &size {
        line = line.size(size);
    }
    FileLog {
        mode: FileMode::Upload,
        src: src.clone(),
        src_path: path.to_owned(),
        dest: None,
        dest_path: None,
        status,
        content: clock.stamp(&line),
        size,
        speed: Some("--".into()),
        process: Some("--".into()),
    }
}

/// START writes every target's download entries up front (§6.6 step 2): waiting with
/// `"--"` figures, or failed on a target whose agent is not installed. A host GSE never
/// reports on (stuck, silent) keeps them, so its log still lists what it was to get.
fn log_downloads(clock: &Clock, job: &Job, sources: &[SourcePlan]) {
    let now = clock.now();
    let rename = job.spec.target_name.as_deref();
    let downloads: Vec<(&HostRef, String, String)> = sources
        .iter()
        .flat_map(|source| {
            let dir = target_dir(&job.spec, &source.host, now);
            source.files().into_iter().map(move |file| {
                let (src_path, dest_path) = file.paths(&dir, rename);
                (&source.host, src_path, dest_path)
            })
        })
        .collect();
    job.with(|s| {
        for host in &mut s.hosts {
            let not_installed = host.status == HostStatus::AgentNotInstalled;
            for (src, src_path, dest_path) in &downloads {
                let (status, content) = if not_installed {
                    let line = FileLogLine::new(dest_path, FileStatus::Failed)
                        .detail("Agent is not installed");
                    (FileStatus::Failed, clock.stamp(&line))
                } else {
                    (FileStatus::Waiting, String::new())
                };
                host.files.push(FileLog {
                    mode: FileMode::Download,
                    src: (*src).clone(),
                    src_path: src_path.clone(),
                    dest: Some(host.host.clone()),
                    dest_path: Some(dest_path.clone()),
                    status,
                    content,
                    size: Some("--".into()),
                    speed: Some("--".into()),
                    process: Some("--".into()),
                });
            }
        }
    });
}

/// Runs the target hosts after `host_wait` and waits for the first of: every host done,
/// the deadline, a terminate. Hosts still running afterwards are settled as JOB does.
async fn transfer(
    engine: &Arc<Engine>,
    job: &Arc<Job>,
    sources: Arc<Vec<SourcePlan>>,
    deadline: Instant,
) -> Outcome {
    let mut hosts = JoinSet::new();
    let stopped = tokio::select! {
        () = tokio::time::sleep(engine.timings.host_wait) => false,
        () = job.stop.notified() => true,
    };
    let mut outcome = Outcome::Stopped;
    if !stopped {
        for idx in 0..job.spec.targets.len() {
            hosts.spawn(run_host(engine.clone(), job.clone(), sources.clone(), idx));
        }
        outcome = wait_for_hosts(&mut hosts, job, deadline).await;
    }
    if outcome == Outcome::TimedOut {
        outcome = time_out_hosts(engine, job, deadline).await;
    }
    match outcome {
        Outcome::Done => {}
        Outcome::TimedOut => hosts.abort_all(),
        Outcome::Stopped => terminate_hosts(engine, job, &mut hosts).await,
    }
    outcome
}

async fn wait_for_hosts(hosts: &mut JoinSet<()>, job: &Job, deadline: Instant) -> Outcome {
    loop {
        tokio::select! {
            next = hosts.join_next() => if next.is_none() { return Outcome::Done },
            () = tokio::time::sleep_until(deadline) => return Outcome::TimedOut,
            () = job.stop.notified() => return Outcome::Stopped,
        }
    }
}

/// GSE's own timeout: hosts it still reports on end as 303. Silent hosts (GSE never
/// reports) wait for JOB's safety net, 5 minutes after the timeout, and become 15, unless a
/// terminate comes first.
async fn time_out_hosts(engine: &Engine, job: &Job, deadline: Instant) -> Outcome {
    let world = &engine.world;
    let silent: Vec<bool> = job
        .spec
        .targets
        .iter()
        .map(|h| world.host_silent(h))
        .collect();
    let now = engine.clock.now_ms();
    let waiting_for_silent = job.with(|s| {
        let mut left = false;
        for (h, quiet) in s.hosts.iter_mut().zip(&silent) {
            if !h.status.is_finished() {
                if *quiet {
                    left = true;
                } else {
                    end_host(h, HostStatus::GseTimeout, gse_code::TIMEOUT, now);
                }
            }
        }
        left
    });
    if !waiting_for_silent {
        return Outcome::TimedOut;
    }
    let stopped = tokio::select! {
        () = tokio::time::sleep_until(deadline + SILENT_HOST_GRACE) => false,
        () = job.stop.notified() => true,
    };
    if stopped {
        return Outcome::Stopped;
    }
    end_open_hosts(engine, job, HostStatus::LogError, gse_code::ERROR);
    Outcome::TimedOut
}

/// A terminate: GSE is told to stop, and after `stop_delay` the hosts still running are
/// force-terminated (403).
async fn terminate_hosts(engine: &Engine, job: &Job, hosts: &mut JoinSet<()>) {
    tokio::time::sleep(engine.timings.stop_delay).await;
    hosts.abort_all();
    end_open_hosts(
        engine,
        job,
        HostStatus::GseTaskTerminateSuccess,
        gse_code::TERMINATED,
    );
}

/// Ends every host still waiting or running with `status`.
fn end_open_hosts(engine: &Engine, job: &Job, status: HostStatus, code: i64) {
    let now = engine.clock.now_ms();
    job.with(|s| {
        for h in s.hosts.iter_mut().filter(|h| !h.status.is_finished()) {
            end_host(h, status, code, now);
        }
    });
}

fn end_host(host: &mut HostTask, status: HostStatus, code: i64, now: i64) {
    host.status = status;
    host.error_code = code;
    host.end_ms = Some(now);
}

/// GSE ends the files of a host it timed out or terminated: entries still open fail with a
/// closing line, so a finished job's log shows no file as still downloading.
pub(crate) fn close_open_files(clock: &Clock, job: &Job) {
    job.with(|s| {
        for h in &mut s.hosts {
            let detail = match h.status {
                HostStatus::GseTimeout => "File transmission timeout",
                HostStatus::GseTaskTerminateSuccess => "Force terminated",
                _ => continue,
            };
            for f in h.files.iter_mut().filter(|f| f.status.is_open()) {
                f.fail(clock, detail);
            }
        }
    });
}

/// The job's final status (3 only if every target is 9; 11 after a terminate), the end of
/// its open uploads, and its end time.
fn finish(engine: &Engine, job: &Job, outcome: Outcome) -> RunStatus {
    let clock = &engine.clock;
    let end = clock.now_ms();
    job.with(|s| {
        let all_ok = s.hosts.iter().all(|h| h.status == HostStatus::Success);
        let status = match outcome {
            Outcome::Stopped => RunStatus::StopSuccess,
            _ if all_ok => RunStatus::Success,
            _ => RunStatus::Fail,
        };
        end_open_uploads(clock, s, status == RunStatus::Success);
        s.set_status(status);
        s.end_ms = Some(end);
        status
    })
}

/// Ends the uploads still open when the job reaches a final status. An upload succeeded when
/// some target received that file; a failure elsewhere in the job (another entry missing,
/// another host down) does not fail it.
pub(crate) fn end_open_uploads(clock: &Clock, s: &mut JobState, succeeded: bool) {
    let delivered: Vec<(HostRef, String)> = s
        .hosts
        .iter()
        .flat_map(|h| h.files.iter())
        .filter(|f| f.status == FileStatus::Finished)
        .map(|f| (f.src.clone(), f.src_path.clone()))
        .collect();
    for upload in s
        .uploads
        .iter_mut()
        .filter(|u| matches!(u.status, FileStatus::Waiting | FileStatus::Uploading))
    {
        let sent = succeeded
            || delivered
                .iter()
                .any(|(h, p)| *h == upload.src && *p == upload.src_path);
        end_upload(clock, upload, sent);
    }
}

fn end_upload(clock: &Clock, upload: &mut FileLog, sent: bool) {
    let (status, process, detail) = if sent {
        (FileStatus::Finished, "100%", "success")
    } else {
        (FileStatus::Failed, "--", "upload ended")
    };
    upload.status = status;
    upload.process = Some(process.into());
    let size = upload.size.clone().unwrap_or_default();
    let line = FileLogLine::new(&upload.src_path, status)
        .size(&size)
        .progress(process)
        .detail(detail);
    upload.content.push_str(&clock.stamp(&line));
}

/// JOB's callback, once per job at its final status (§5).
pub(crate) fn send_callback(engine: &Engine, job: &Job, status: RunStatus) {
    let Some(url) = job.spec.callback.clone() else {
        return;
    };
    // The step's own status: 6 when a rolling job ended with an ignored failure.
    let step_status = job.with(|s| s.step_status);
    let body = serde_json::json!({
        "job_instance_id": job.id,
        "status": status,
        "step_instances": [{"step_instance_id": job.step_id, "status": step_status}],
    })
    .to_string();
    let http = engine.http.clone();
    let form_first = engine.timings.form_callback;
    tokio::spawn(async move { post_callback(http, url, body, form_first).await });
}

async fn post_callback(http: reqwest::Client, url: String, body: String, form_first: bool) {
    let post = |ct: &'static str| {
        http.post(url.as_str())
            .header(reqwest::header::CONTENT_TYPE, ct)
            .body(body.clone())
            .send()
    };
    if form_first {
        // <= 3.10: form content type carrying the JSON text; one retry on an exception.
        if post("application/x-www-form-urlencoded").await.is_err() {
            let _ = post("application/x-www-form-urlencoded").await;
        }
        return;
    }
    match post("application/json").await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => {}
        Ok(_) => {
            let _ = post("application/x-www-form-urlencoded").await;
        }
        Err(e) => tracing::debug!(%e, "callback failed; not retried"),
    }
}

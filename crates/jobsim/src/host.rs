//! One target host's part of a job, read top to bottom in [`run_host`]: it starts running,
//! meets its agent, then receives each source host's files in turn, logging each file as
//! GSE does (downloading at 0%, each percent when paced, finished or failed), and ends with
//! the first failure it met, or success.

use std::sync::Arc;

use plan_bkjob::file_log::{FileLogLine, display_progress, display_size, display_speed};
use plan_bkjob::{FileMode, FileStatus, HostStatus, gse_code};

use crate::engine::{Clock, Engine, FileLog, Job};
use crate::hostfs::{HostFs, detail, flip_every_file, flip_middle_byte, relative};
use crate::sources::{HostFailure, SourceFile, SourcePlan, target_dir, target_failure};
use crate::transfer::{Item, Throttle, copy_dir, copy_file};
use crate::world::HostRef;

/// Runs the transfer to target `idx` of a job.
pub(crate) async fn run_host(
    engine: Arc<Engine>,
    job: Arc<Job>,
    sources: Arc<Vec<SourcePlan>>,
    idx: usize,
) {
    let Some(host) = job.spec.targets.get(idx).cloned() else {
        return;
    };
    let target = Target {
        job: &job,
        idx,
        clock: &engine.clock,
        corrupts: engine.world.host_corrupts(&host),
    };
    if !target.is_waiting() {
        return;
    }
    target.set(HostStatus::Running, gse_code::RUNNING);
    let world = &engine.world;
    if job.stuck || world.host_stuck(&host) || world.host_silent(&host) {
        // A stuck GSE task: nothing is ever reported for this host.
        std::future::pending::<()>().await;
    }
    let account = &job.spec.target_account.alias;
    if let Some(failure) = target_failure(world, &host, account) {
        return target.fail_all(&failure);
    }
    let fs = match HostFs::open(&world.host_root(host.cloud, &host.ip)) {
        Ok(fs) => fs,
        Err(e) => {
            let detail = format!("Cannot open the target host: {}", detail(&e));
            let failure = HostFailure::new(HostStatus::GseFileTaskError, gse_code::ERROR, detail);
            return target.fail_all(&failure);
        }
    };
    let speed = [
        job.spec.upload_limit,
        job.spec.download_limit,
        engine.timings.speed_mb,
    ];
    let mut throttle = Throttle::new(speed.into_iter().flatten().min());
    let mut first_failure = None;
    let now = engine.clock.now();
    for source in sources.iter() {
        let dir = target_dir(&job.spec, &source.host, now);
        let failure = target.receive_from(source, &dir, &fs, &mut throttle).await;
        first_failure = first_failure.or(failure);
    }
    match first_failure {
        None => target.set(HostStatus::Success, gse_code::FINISHED),
        Some((status, code)) => target.set(status, code),
    }
}

/// A target host of a job: its entry in the job's state.
struct Target<'a> {
    job: &'a Job,
    idx: usize,
    clock: &'a Clock,
    /// The host's `corrupt_deliveries` fault.
    corrupts: bool,
}

/// A target directory: its host, and its path there relative to the host root.
#[derive(Clone, Copy)]
struct TargetDir<'a> {
    host: &'a HostFs,
    rel: &'a std::path::Path,
}

/// A download entry to write or update in a target's log.
struct Download<'a> {
    src: &'a HostRef,
    src_path: &'a str,
    dest_path: &'a str,
    size: Option<String>,
    status: FileStatus,
    line: String,
}

impl Target<'_> {
    fn is_waiting(&self) -> bool {
        self.job
            .snapshot()
            .hosts
            .get(self.idx)
            .is_some_and(|h| h.status == HostStatus::Waiting)
    }

    /// Moves the host to `status`; any status but running ends it.
    fn set(&self, status: HostStatus, code: i64) {
        let now = self.clock.now_ms();
        self.job.with(|s| {
            if let Some(h) = s.hosts.get_mut(self.idx) {
                h.status = status;
                h.error_code = code;
                if status != HostStatus::Running {
                    h.end_ms = Some(now);
                }
            }
        });
    }

    /// The host fails before any file moves: every waiting file fails with the reason.
    fn fail_all(&self, failure: &HostFailure) {
        self.job.with(|s| {
            if let Some(h) = s.hosts.get_mut(self.idx) {
                for f in h
                    .files
                    .iter_mut()
                    .filter(|f| f.status == FileStatus::Waiting)
                {
                    f.fail(self.clock, &failure.detail);
                }
            }
        });
        self.set(failure.status, failure.code);
    }

    /// Receives one source host's files into `dir`: the entries that cannot be sent are
    /// logged as failed, then each found file is delivered. Returns the first failure.
    async fn receive_from(
        &self,
        source: &SourcePlan,
        dir: &str,
        fs: &HostFs,
        throttle: &mut Throttle,
    ) -> Option<(HostStatus, i64)> {
        let rename = self.job.spec.target_name.as_deref();
        let mut first_failure = None;
        let mut found = Vec::new();
        for file in source.files() {
            match file {
                SourceFile::Found(item) => found.push(item),
                SourceFile::Failed { failure, .. } => {
                    first_failure = first_failure.or(Some((failure.status, failure.code)));
                    let (src_path, dest_path) = file.paths(dir, rename);
                    self.log_failed(&source.host, &src_path, &dest_path, &failure.detail);
                }
            }
        }
        let rel = relative(dir);
        let target = TargetDir {
            host: fs,
            rel: &rel,
        };
        for item in found {
            let dest_path = SourceFile::Found(item).paths(dir, rename).1;
            let delivered = self
                .receive(&source.host, item, &dest_path, target, throttle)
                .await;
            if let Err(failure) = delivered {
                first_failure = first_failure.or(Some((failure.status, failure.code)));
            }
        }
        first_failure
    }

    fn log_failed(&self, src: &HostRef, src_path: &str, dest_path: &str, detail: &str) {
        let line = FileLogLine::new(dest_path, FileStatus::Failed).detail(detail);
        self.push_log(Download {
            src,
            src_path,
            dest_path,
            size: None,
            status: FileStatus::Failed,
            line: self.clock.stamp(&line),
        });
    }

    /// One file: logged as downloading at 0%, copied, then logged finished or failed.
    async fn receive(
        &self,
        src: &HostRef,
        item: &Item,
        dest_path: &str,
        target: TargetDir<'_>,
        throttle: &mut Throttle,
    ) -> Result<(), HostFailure> {
        let size = display_size(item.size);
        let started = FileLogLine::new(dest_path, FileStatus::Downloading)
            .size(&size)
            .progress("0%");
        let log_idx = self.push_log(Download {
            src,
            src_path: &item.display,
            dest_path,
            size: Some(size.clone()),
            status: FileStatus::Downloading,
            line: self.clock.stamp(&started),
        });
        let result = self.deliver(item, target, throttle, log_idx).await;
        let speed = display_speed(throttle.kb_per_sec());
        let (status, progress, detail) = match &result {
            Ok(()) => (FileStatus::Finished, "100%", "success"),
            Err(failure) => (FileStatus::Failed, "0%", failure.detail.as_str()),
        };
        let ended = FileLogLine::new(dest_path, status)
            .size(&size)
            .speed(&speed)
            .progress(progress)
            .detail(detail);
        let line = self.clock.stamp(&ended);
        self.update_log(log_idx, |f| {
            f.status = status;
            f.content.push_str(&line);
            f.speed = Some(speed.clone());
            f.process = Some(if status == FileStatus::Finished {
                "100%".into()
            } else {
                "--".into()
            });
        });
        result
    }

    /// Writes a file's log entry: the one START wrote for it while still waiting, or a new
    /// one. Returns its index in the host's files.
    fn push_log(&self, download: Download<'_>) -> usize {
        self.job.with(|s| {
            let Some(h) = s.hosts.get_mut(self.idx) else {
                return 0;
            };
            let waiting = h.files.iter().position(|f| {
                f.mode == FileMode::Download
                    && f.status == FileStatus::Waiting
                    && f.src == *download.src
                    && f.src_path == download.src_path
            });
            if let Some(i) = waiting
                && let Some(f) = h.files.get_mut(i)
            {
                f.dest_path = Some(download.dest_path.to_string());
                f.status = download.status;
                f.content.push_str(&download.line);
                f.size = download.size.or_else(|| Some("--".into()));
                f.process = Some("0%".into());
                return i;
            }
            h.files.push(FileLog {
                mode: FileMode::Download,
                src: download.src.clone(),
                src_path: download.src_path.to_string(),
                dest: Some(h.host.clone()),
                dest_path: Some(download.dest_path.to_string()),
                status: download.status,
                content: download.line,
                size: download.size,
                speed: Some("--".into()),
                process: Some("0%".into()),
            });
            h.files.len() - 1
        })
    }

    fn update_log(&self, log_idx: usize, update: impl FnOnce(&mut FileLog)) {
        self.job.with(|s| {
            if let Some(f) = s
                .hosts
                .get_mut(self.idx)
                .and_then(|h| h.files.get_mut(log_idx))
            {
                update(f);
            }
        });
    }

    /// Copies one file or directory into the target directory, made first unless the job is
    /// strict (`transfer_mode` 1). A file's progress is logged as it goes.
    async fn deliver(
        &self,
        item: &Item,
        target: TargetDir<'_>,
        throttle: &mut Throttle,
        log_idx: usize,
    ) -> Result<(), HostFailure> {
        self.prepare_dir(target)?;
        let host = target.host.dir();
        let dest = target.rel.join(&item.dest_name);
        let src = item.host.dir();
        let io = if item.is_dir {
            copy_dir(src, &item.rel, host, &dest, throttle)
                .await
                .and_then(|()| self.corrupt_tree(host, &dest))
        } else {
            let size = display_size(item.size);
            copy_file(src, &item.rel, host, &dest, throttle, |pct, kb| {
                self.log_progress(log_idx, &size, pct, kb);
            })
            .await
            .and_then(|()| self.corrupt(host, &dest))
        };
        io.map_err(|e| {
            HostFailure::new(
                HostStatus::GseFileTaskError,
                gse_code::ERROR,
                format!("Transfer failed: {}", detail(&e)),
            )
        })
    }

    /// The `corrupt_deliveries` fault: the delivered file is altered, and nothing says so.
    fn corrupt(&self, host: &cap_std::fs::Dir, dest: &std::path::Path) -> std::io::Result<()> {
        if self.corrupts {
            flip_middle_byte(host, dest)
        } else {
            Ok(())
        }
    }

    /// The same fault on every file of a delivered directory.
    fn corrupt_tree(&self, host: &cap_std::fs::Dir, dest: &std::path::Path) -> std::io::Result<()> {
        if self.corrupts {
            flip_every_file(host, dest)
        } else {
            Ok(())
        }
    }

    fn log_progress(&self, log_idx: usize, size: &str, pct: u8, kb: u64) {
        let speed = display_speed(kb);
        let progress = display_progress(pct);
        let clock = self.clock;
        self.update_log(log_idx, |f| {
            let path = f.dest_path.clone().unwrap_or_default();
            let line = FileLogLine::new(&path, FileStatus::Downloading)
                .size(size)
                .speed(&speed)
                .progress(&progress);
            f.content.push_str(&clock.stamp(&line));
            f.process = Some(progress.clone());
            f.speed = Some(speed.clone());
        });
    }

    /// The target directory exists, or is made; a strict job does not make it (§4.3).
    fn prepare_dir(&self, target: TargetDir<'_>) -> Result<(), HostFailure> {
        let host = target.host.dir();
        let strict = self.job.spec.strict;
        let cannot = |e: &std::io::Error| {
            HostFailure::new(
                HostStatus::GseFileTaskError,
                gse_code::ERROR,
                format!("Cannot create target directory: {}", detail(e)),
            )
        };
        match host.metadata(target.rel) {
            Ok(m) if m.is_dir() => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !strict => {
                host.create_dir_all(target.rel).map_err(|e| cannot(&e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(cannot(&e)),
            _ if strict => Err(HostFailure::new(
                HostStatus::GseFileTaskError,
                gse_code::TARGET_DIR_MISSING,
                "Target directory does not exist",
            )),
            // Not a directory: creating it fails and says why.
            _ => host.create_dir_all(target.rel).map_err(|e| cannot(&e)),
        }
    }
}

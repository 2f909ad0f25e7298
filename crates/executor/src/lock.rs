//! One apply per plan at a time: `STATE/locks/<plan>.lock`, an operating-system file lock
//! (`flock`) held for the whole run.
//!
//! The OS lock is what excludes: taking it is one atomic call, and it goes with the process
//! however the process ends. So there is no stale lock to clean up and no window in which two
//! processes both believe they hold it (a "remove the stale file, create a new one" takeover
//! can delete a lock another process just created). The file's content (holder, pid, host,
//! start time) only informs: it names the holder to whoever is refused, and content found by
//! the next holder was left by a process that ended without releasing (killed). The file is
//! never deleted: a process could otherwise lock a file that is no longer the one at the path.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::safe_name;

/// Who holds a lock (the file's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// `$USER`.
    pub holder: String,
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// RFC 3339.
    pub started_at: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, since {})",
            self.holder, self.pid, self.host, self.started_at
        )
    }
}

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another apply of this plan holds it.
    #[error("plan `{plan}` is being applied by {holder}; lock file `{}`", path.display())]
    Held {
        /// Plan.
        plan: String,
        /// The holder.
        holder: Box<LockHolder>,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file exists but cannot be read or written.
    #[error("lock file `{}`: {message}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// A held lock: the open lock file, whose OS lock is released when it is dropped (or when the
/// process ends, whichever comes first).
#[derive(Debug)]
pub struct PlanLock {
    path: PathBuf,
    file: std::fs::File,
    /// Set when the previous holder ended without releasing the lock (it was killed): who it was.
    pub taken_over_from: Option<LockHolder>,
}

impl PlanLock {
    /// Takes the lock of `plan`, or says who holds it. Never waits.
    pub fn acquire(state_dir: &Path, plan: &str) -> Result<Self, LockError> {
        let dir = state_dir.join("locks");
        let path = dir.join(format!("{}.lock", safe_name(plan)));
        let io = |e: std::io::Error| LockError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    plan: plan.to_owned(),
                    holder: Box::new(holder_of(&mut file).unwrap_or_else(unknown_holder)),
                    path,
                });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now. Content left in the file is the last holder's, which did not release.
        let taken_over_from = holder_of(&mut file);
        let me = LockHolder {
            holder: current_user(),
            pid: std::process::id(),
            host: host_name(),
            started_at: crate::journal::now(),
        };
        let text = serde_json::to_string_pretty(&me).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(PlanLock {
            path,
            file,
            taken_over_from,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PlanLock {
    fn drop(&mut self) {
        // Still holding the OS lock: an empty file says "released cleanly" to the next holder.
        // Closing the file (right after) releases the lock itself.
        let _ = self.file.set_len(0);
    }
}

/// The holder named in an open lock file, if it names one.
fn holder_of(file: &mut std::fs::File) -> Option<LockHolder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// A holder that has not written its name yet (it took the lock a moment ago).
fn unknown_holder() -> LockHolder {
    LockHolder {
        holder: "unknown".into(),
        pid: 0,
        host: "unknown".into(),
        started_at: "unknown".into(),
    }
}

/// `$USER`, `$LOGNAME`, or `unknown`.
pub(crate) fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        // Cron jobs, containers and CI runners often have no USER: the lock and the journal
        // should still say who, so look the real uid up as `id -un` would.
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            user_from_uid(&status, &passwd)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The user name of the real uid in a `/proc/self/status` text, from an `/etc/passwd` text;
/// `uid N` when the uid has no entry.
fn user_from_uid(status: &str, passwd: &str) -> Option<String> {
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?;
    let name = passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

/// The machine's host name (`/etc/hostname`, `$HOSTNAME`), or `localhost`.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_without_user_variables_is_named_by_uid() {
        let status = "Name:\tplan\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\n";
        let passwd = "root:x:0:0:root:/root:/bin/bash\ndeploy:x:1000:1000::/home/deploy:/bin/sh\n";
        assert_eq!(user_from_uid(status, passwd).as_deref(), Some("deploy"));
        assert_eq!(
            user_from_uid(status, "root:x:0:0::/:/bin/sh\n").as_deref(),
            Some("uid 1000")
        );
        assert_eq!(user_from_uid("Name:\tplan\n", passwd), None);
    }

    #[test]
    fn second_acquire_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = PlanLock::acquire(dir.path(), "rel").expect("first");
        let err = PlanLock::acquire(dir.path(), "rel").expect_err("held");
        match err {
            LockError::Held { holder, .. } => assert_eq!(holder.pid, std::process::id()),
            other => panic!("{other}"),
        }
        drop(lock);
        let again = PlanLock::acquire(dir.path(), "rel").expect("released");
        assert!(again.taken_over_from.is_none(), "released cleanly");
    }

    #[test]
    fn a_lock_left_by_a_killed_process_is_taken_over_whatever_host_it_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("locks")).expect("dir");
        // What a process killed while holding the lock leaves: its name, no OS lock.
        let stale = LockHolder {
            holder: "someone".into(),
            pid: 4_000_000_000,
            host: "elsewhere.example".into(),
            started_at: "2020-01-01T00:00:00Z".into(),
        };
        std::fs::write(
            dir.path().join("locks/rel.lock"),
            serde_json::to_string(&stale).expect("json"),
        )
        .expect("write");
        let lock = PlanLock::acquire(dir.path(), "rel").expect("taken over");
        assert_eq!(lock.taken_over_from, Some(stale));
        let text = std::fs::read_to_string(lock.path()).expect("read");
        let me: LockHolder = serde_json::from_str(&text).expect("our name");
        assert_eq!(me.pid, std::process::id());
    }

    #[test]
    fn of_many_taking_the_lock_at_once_exactly_one_gets_it_and_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let contenders = 16;
        let gate = std::sync::Barrier::new(contenders);
        let (dir, gate) = (dir.path(), &gate);
        let locks: Vec<PlanLock> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..contenders)
                .map(|_| {
                    scope.spawn(move || {
                        gate.wait();
                        PlanLock::acquire(dir, "rel").ok()
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(locks.len(), 1);
        // The winner's lock stays: a later contender is refused, and the file is the same.
        assert!(matches!(
            PlanLock::acquire(dir, "rel"),
            Err(LockError::Held { .. })
        ));
        assert!(locks[0].path().exists());
    }
}

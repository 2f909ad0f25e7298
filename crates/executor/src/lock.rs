//! One apply per plan at a time: `STATE/locks/<plan>.lock`, created with O_EXCL.

use std::io::Write as _;
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

/// A held lock; released (file removed) on drop.
#[derive(Debug)]
pub struct PlanLock {
    path: PathBuf,
    me: LockHolder,
    /// Set when a stale lock was taken over: the previous holder.
    pub taken_over_from: Option<LockHolder>,
}

impl PlanLock {
    /// Takes the lock of `plan`, taking over a lock whose process is gone (same host only: a
    /// pid on another host cannot be checked, so that lock is reported as held).
    pub fn acquire(state_dir: &Path, plan: &str) -> Result<Self, LockError> {
        let dir = state_dir.join("locks");
        let path = dir.join(format!("{}.lock", safe_name(plan)));
        let io = |e: std::io::Error| LockError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let me = LockHolder {
            holder: current_user(),
            pid: std::process::id(),
            host: host_name(),
            started_at: crate::journal::now(),
        };
        let mut taken_over_from = None;
        // Two rounds: the second after removing a stale lock. If another process re-created
        // it in between, that process wins and we report it as the holder.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let text = serde_json::to_string_pretty(&me).unwrap_or_default();
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(io)?;
                    return Ok(PlanLock {
                        path,
                        me,
                        taken_over_from,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = read_holder(&path);
                    match holder {
                        Some(h) if h.host == me.host && !process_alive(h.pid) => {
                            std::fs::remove_file(&path).map_err(io)?;
                            taken_over_from = Some(h);
                        }
                        Some(h) => {
                            return Err(LockError::Held {
                                plan: plan.to_owned(),
                                holder: Box::new(h),
                                path,
                            });
                        }
                        None => {
                            // Unreadable: maybe being written right now. Treat as held.
                            return Err(LockError::Held {
                                plan: plan.to_owned(),
                                holder: Box::new(LockHolder {
                                    holder: "unknown".into(),
                                    pid: 0,
                                    host: "unknown".into(),
                                    started_at: "unknown".into(),
                                }),
                                path,
                            });
                        }
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        let holder = read_holder(&path).unwrap_or_else(|| me.clone());
        Err(LockError::Held {
            plan: plan.to_owned(),
            holder: Box::new(holder),
            path,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PlanLock {
    fn drop(&mut self) {
        // Remove only our own lock (a takeover by another process must not be undone).
        if read_holder(&self.path).is_some_and(|h| h.pid == self.me.pid && h.host == self.me.host) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
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

/// Whether a process with this pid exists (and is not a zombie) on this machine.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_dir = Path::new("/proc");
    if proc_dir.join("self").exists() {
        return match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")) {
            // The state is the first field after the `(comm)`; `Z` is a zombie: gone.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_none_or(|state| state != "Z" && state != "X"),
            Err(_) => false,
        };
    }
    // Without /proc: `kill -0` asks the OS without sending anything.
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
        assert!(again.taken_over_from.is_none());
    }

    #[test]
    fn lock_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("locks")).expect("dir");
        // A pid far above any real one on this machine.
        let stale = LockHolder {
            holder: "someone".into(),
            pid: 4_000_000_000,
            host: host_name(),
            started_at: "2020-01-01T00:00:00Z".into(),
        };
        std::fs::write(
            dir.path().join("locks/rel.lock"),
            serde_json::to_string(&stale).expect("json"),
        )
        .expect("write");
        let lock = PlanLock::acquire(dir.path(), "rel").expect("taken over");
        assert_eq!(lock.taken_over_from, Some(stale));
        let other_host = LockHolder {
            host: "elsewhere.example".into(),
            pid: 4_000_000_000,
            ..lock.me.clone()
        };
        drop(lock);
        std::fs::write(
            dir.path().join("locks/rel.lock"),
            serde_json::to_string(&other_host).expect("json"),
        )
        .expect("write");
        assert!(matches!(
            PlanLock::acquire(dir.path(), "rel"),
            Err(LockError::Held { .. })
        ));
    }
}

//! Job, step, host and file statuses (`RunStatusEnum`, `ExecuteObjectTaskStatusEnum`,
//! `FileDistStatusEnum`) and the file-log mode (`FileDistModeEnum`).
//!
//! All are open enums: a value this crate does not know is kept as `Unknown(n)` so a newer JOB
//! never breaks parsing, and an unknown job status counts as not finished.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know.
            Unknown(i32),
        }

        impl $name {
            /// The number on the wire.
            pub fn code(self) -> i32 {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Unknown(n) => n,
                }
            }

            /// The status for a number on the wire.
            pub fn from_code(code: i32) -> Self {
                match code {
                    $( $value => $name::$variant, )*
                    n => $name::Unknown(n),
                }
            }

            /// JOB's English label.
            pub fn label(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )*
                    $name::Unknown(_) => "Unknown",
                }
            }
        }

        impl fmt::Display for $name {
            /// `"<code> <label>"`, e.g. `320 File pull failed`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.code(), self.label())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_i32(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok($name::from_code(i32::deserialize(deserializer)?))
            }
        }
    };
}

open_enum! {
    /// Job and step status (`RunStatusEnum`).
    RunStatus {
        /// 1: created, not started.
        Blank = 1 => "Pending",
        /// 2.
        Running = 2 => "Running",
        /// 3.
        Success = 3 => "Success",
        /// 4: at least one host failed (there is no partial success).
        Fail = 4 => "Failed",
        /// 5.
        Skipped = 5 => "Skipped",
        /// 6.
        IgnoreError = 6 => "Ignore Error",
        /// 7: waiting for a user.
        WaitingUser = 7 => "Waiting",
        /// 8.
        Terminated = 8 => "Terminated",
        /// 9.
        AbnormalState = 9 => "Abnormal",
        /// 10: termination in progress.
        Stopping = 10 => "Terminating",
        /// 11: terminated.
        StopSuccess = 11 => "Terminate Success",
        /// 13.
        ConfirmTerminated = 13 => "Termination Confirmed",
        /// 14.
        Abandoned = 14 => "Abandoned",
        /// 15: between rolling batches.
        RollingWaiting = 15 => "Rolling Waiting",
    }
}

impl RunStatus {
    /// In JOB's finished set (what `is_finished` / `finished` report).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Success
                | RunStatus::Fail
                | RunStatus::Skipped
                | RunStatus::IgnoreError
                | RunStatus::Terminated
                | RunStatus::AbnormalState
                | RunStatus::StopSuccess
                | RunStatus::ConfirmTerminated
                | RunStatus::Abandoned
        )
    }
}

open_enum! {
    /// Per-host status of a file step (`ExecuteObjectTaskStatusEnum`).
    HostStatus {
        /// 0.
        UnknownError = 0 => "Unknown Error",
        /// 1.
        AgentError = 1 => "Abnormal Agent",
        /// 2.
        InvalidExecuteObject = 2 => "Invalid Execute Object",
        /// 3: succeeded in an earlier execution.
        LastSuccess = 3 => "Successful Last Time",
        /// 5.
        Waiting = 5 => "Waiting",
        /// 7.
        Running = 7 => "Running",
        /// 9.
        Success = 9 => "Success",
        /// 11: generic failure.
        Failed = 11 => "Failed",
        /// 12.
        SubmitFailed = 12 => "Task send failed",
        /// 13.
        TaskTimeout = 13 => "Task Timeout",
        /// 15: JOB gave up waiting for results.
        LogError = 15 => "Error in Log",
        /// 16.
        GseScriptTimeout = 16 => "Script Log Timeout",
        /// 17.
        GseFileTimeout = 17 => "File Log Timeout",
        /// 18.
        AgentNotInstalled = 18 => "Agent not installed",
        /// 101: the script could not be run.
        ScriptFailed = 101 => "Script execution failed",
        /// 102.
        ScriptTimeout = 102 => "Script execution timeout",
        /// 103.
        ScriptTerminate = 103 => "Script execution terminated",
        /// 104: the script ran and exited with a code other than 0.
        ScriptNotZeroExitCode = 104 => "Script return non-zero code",
        /// 202.
        CopyFileFailed = 202 => "File Transmission Failed",
        /// 203.
        CopyFileSourceNotExist = 203 => "Source File Not Exists",
        /// 301.
        FileErrorUnclassified = 301 => "Unclassified File Failure",
        /// 303: GSE code 120.
        GseTimeout = 303 => "File Transmission Timeout",
        /// 310: GSE code 117.
        GseAgentError = 310 => "Abnormal Agent",
        /// 311: GSE code 122, the account does not exist on the host.
        GseUserError = 311 => "User not exist",
        /// 312.
        GseUserPwdError = 312 => "User password incorrect",
        /// 320: typically a missing source file.
        GseFileError = 320 => "File pull failed",
        /// 321.
        GseFileSizeExceed = 321 => "File size exceeds limit",
        /// 329.
        GseFileTaskError = 329 => "File Transmission Error",
        /// 399.
        GseTaskError = 399 => "Execution Error",
        /// 403.
        GseTaskTerminateSuccess = 403 => "Force Terminated",
        /// 404.
        GseTaskTerminateFailed = 404 => "Force Terminate Failed",
        /// 500.
        Unknown500 = 500 => "Unknown",
    }
}

impl HostStatus {
    /// Any status other than waiting or running.
    pub fn is_finished(self) -> bool {
        !matches!(self, HostStatus::Waiting | HostStatus::Running)
    }

    /// 9, or 3 (succeeded last time).
    pub fn is_success(self) -> bool {
        matches!(self, HostStatus::Success | HostStatus::LastSuccess)
    }
}

open_enum! {
    /// One file's transfer status in a file log (`FileDistStatusEnum`, §6.4). The label is
    /// the `StatusDesc:` text of a progress line (§7.6).
    FileStatus {
        /// 0: pulling from a third-party source.
        Pulling = 0 => "pulling",
        /// 1.
        Waiting = 1 => "waiting",
        /// 2.
        Uploading = 2 => "uploading",
        /// 3.
        Downloading = 3 => "downloading",
        /// 4.
        Finished = 4 => "finished",
        /// 5.
        Failed = 5 => "failed",
    }
}

impl FileStatus {
    /// 4 or 5: nothing more will move for this file.
    pub fn is_finished(self) -> bool {
        matches!(self, FileStatus::Finished | FileStatus::Failed)
    }

    /// 0 to 3: the file still has bytes to move (pulling, waiting, uploading, downloading).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            FileStatus::Pulling
                | FileStatus::Waiting
                | FileStatus::Uploading
                | FileStatus::Downloading
        )
    }

    /// 2 or 3: bytes are moving.
    pub fn is_transferring(self) -> bool {
        matches!(self, FileStatus::Uploading | FileStatus::Downloading)
    }
}

open_enum! {
    /// Which side of a transfer a file-log entry describes (`FileDistModeEnum`).
    FileMode {
        /// 0: a source host sending.
        Upload = 0 => "upload",
        /// 1: a target host receiving.
        Download = 1 => "download",
    }
}

impl Default for FileMode {
    /// What a missing or `null` `mode` decodes to (0, as JOB's default).
    fn default() -> Self {
        FileMode::Upload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_round_trip() {
        let status: RunStatus = serde_json::from_str("42").expect("number");
        assert_eq!(status, RunStatus::Unknown(42));
        assert!(!status.is_finished());
        assert_eq!(serde_json::to_string(&status).expect("serialise"), "42");
    }

    #[test]
    fn finished_set_matches_job() {
        let finished: Vec<i32> = (0..20)
            .filter(|n| RunStatus::from_code(*n).is_finished())
            .collect();
        assert_eq!(finished, vec![3, 4, 5, 6, 8, 9, 11, 13, 14]);
    }

    #[test]
    fn host_labels() {
        assert_eq!(
            HostStatus::from_code(320).to_string(),
            "320 File pull failed"
        );
        assert!(HostStatus::from_code(3).is_success());
        assert!(!HostStatus::from_code(7).is_finished());
        assert!(HostStatus::from_code(999).is_finished());
    }

    #[test]
    fn file_statuses() {
        let open: Vec<i32> = (0..8)
            .filter(|n| FileStatus::from_code(*n).is_open())
            .collect();
        assert_eq!(open, vec![0, 1, 2, 3]);
        let finished: Vec<i32> = (0..8)
            .filter(|n| FileStatus::from_code(*n).is_finished())
            .collect();
        assert_eq!(finished, vec![4, 5]);
        assert_eq!(FileStatus::Downloading.to_string(), "3 downloading");
        assert!(!FileStatus::Waiting.is_transferring());
        assert_eq!(FileMode::from_code(1), FileMode::Download);
        assert_eq!(FileMode::default().code(), 0);
    }
}

/// What kind of step a step instance is (`type` / `step_type` in JOB's answers; bk-job's
/// `StepExecuteTypeEnum` as the open APIs number it).
pub mod step_type {
    /// A script step.
    pub const SCRIPT: i32 = 1;
    /// A file-distribution step: what `fast_push_file` / `fast_transfer_file` create.
    pub const FILE: i32 = 2;
    /// A manual-confirmation step.
    pub const MANUAL_CONFIRM: i32 = 3;
}

/// What a host's log holds (`log_type` in v3's log answers).
pub mod log_type {
    /// A script's output.
    pub const SCRIPT: i32 = 1;
    /// File-task lines.
    pub const FILE: i32 = 2;
}

/// How a job was started (`start_way` in v2's status answer; bk-job's `TaskStartupModeEnum`).
pub mod start_way {
    /// From the web UI.
    pub const WEB: i32 = 1;
    /// Through the API: how every job `plan` submits starts.
    pub const API: i32 = 2;
    /// By a cron job.
    pub const CRON: i32 = 3;
}

/// What kind of job a job instance is (`type` in `get_job_instance_list`; bk-job's
/// `TaskTypeEnum`).
pub mod job_type {
    /// A job plan's run.
    pub const PLAN: i32 = 0;
    /// A fast script execution.
    pub const SCRIPT: i32 = 1;
    /// A fast file distribution: what `fast_push_file` / `fast_transfer_file` create.
    pub const FILE: i32 = 2;
}

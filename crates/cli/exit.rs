//! Exit codes: the contract in `design/cli.md`, in one place.

use std::process::ExitCode;

/// How a command ended, as the process exit code scripts rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// 0: success (`check`: valid, warnings allowed).
    Success,
    /// 1: the plan is invalid; nothing was sent.
    Invalid,
    /// 2: command-line usage error.
    Usage,
    /// 3: `apply` ran and at least one push failed.
    PushFailed,
    /// 4: `apply` could not start.
    CannotStart,
    /// 5: the run stopped at a point that needs a person (a gate, a JOB rolling batch
    /// waiting for a confirmation); `--resume --confirm PUSH` continues.
    AwaitingConfirmation,
    /// 10: `diff --exit-code` found changes: a code no other outcome of any command uses, so
    /// a script tells "changed" from "invalid" (1) and "usage" (2).
    Changed,
    /// 11: `drift` found targets that do not hold what the plan delivers.
    Drift,
    /// 130: interrupted.
    Interrupted,
}

impl ExitStatus {
    pub(crate) fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Invalid => 1,
            ExitStatus::Usage => 2,
            ExitStatus::PushFailed => 3,
            ExitStatus::CannotStart => 4,
            ExitStatus::AwaitingConfirmation => 5,
            ExitStatus::Changed => 10,
            ExitStatus::Drift => 11,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus;

    #[test]
    fn codes_are_the_table_of_cli_md() {
        let table = [
            (ExitStatus::Success, 0),
            (ExitStatus::Invalid, 1),
            (ExitStatus::Usage, 2),
            (ExitStatus::PushFailed, 3),
            (ExitStatus::CannotStart, 4),
            (ExitStatus::AwaitingConfirmation, 5),
            (ExitStatus::Changed, 10),
            (ExitStatus::Drift, 11),
            (ExitStatus::Interrupted, 130),
        ];
        for (status, code) in table {
            assert_eq!(status.code(), code, "{status:?}");
        }
    }
}

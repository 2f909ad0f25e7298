//! The release keys of a push: `rolling` (JOB's rolling batches, or plan-made batches under
//! v2 with `max_failed`), `gate`, `verify` and `callback_url`, and their checks.
//!
//! What each means at apply time is described in docs/rolling.md; JOB's own rules (the
//! expression grammar, the modes, the batch sizes) come from [`plan_bkjob::rolling`], never
//! from here.

use plan_bkjob::rolling::{RollingExpr, RollingExprError};

pub use plan_bkjob::rolling::RollingMode;

use crate::model::{HostSet, Located, Setting, Span};

/// The release settings of one push (all absent by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    /// `rolling = { ... }`.
    pub rolling: Option<Rolling>,
    /// `gate = true`: the span of the value, when the push waits for an approval.
    pub gate: Option<Span>,
    /// `verify = "size" | "sha256"`.
    pub verify: Option<Located<Verify>>,
    /// `callback_url`, the push's own or inherited from `[plan]`.
    pub callback_url: Option<Setting<String>>,
}

/// `rolling = { ... }` of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rolling {
    /// What the batches are made of.
    pub over: RollingOver,
    /// What happens after a batch (JOB's `rolling_config.mode`; default pause on failure).
    pub mode: RollingMode,
    /// `max_failed`: how many target hosts may fail before plan-made (v2) batches stop.
    pub max_failed: Option<Located<MaxFailed>>,
    /// The span of the `rolling` table.
    pub span: Span,
}

/// The two kinds of JOB rolling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollingOver {
    /// Batches of target hosts by JOB's expression (`rolling_config.type = 1`).
    Targets {
        /// The expression as written.
        expression: Located<String>,
        /// The expression as JOB parses it.
        parsed: RollingExpr,
    },
    /// Batches of source files (`rolling_config.type = 2`, v3 only).
    Sources {
        /// `sources_per_batch`: source hosts per batch.
        sources_per_batch: Option<u32>,
        /// `files_per_source`: files of one source host per batch.
        files_per_source: Option<u32>,
    },
}

impl Rolling {
    /// The sizes of the target batches over `hosts` static hosts (none for rolling over
    /// sources, or when JOB would refuse the number of batches).
    pub fn target_batches(&self, hosts: usize) -> Option<Vec<usize>> {
        match &self.over {
            RollingOver::Targets { parsed, .. } => parsed.batch_sizes(hosts).ok(),
            RollingOver::Sources { .. } => None,
        }
    }

    /// `pause-on-failure`, `ignore-failure` or `manual`, as plans write the mode.
    pub fn mode_name(&self) -> &'static str {
        mode_name(self.mode)
    }
}

/// A mode's name as plans write it.
pub fn mode_name(mode: RollingMode) -> &'static str {
    match mode {
        RollingMode::PauseOnFailure => "pause-on-failure",
        RollingMode::IgnoreFailure => "ignore-failure",
        RollingMode::Manual => "manual",
    }
}

/// The mode a plan's name stands for.
pub(crate) fn mode_from_name(name: &str) -> Option<RollingMode> {
    [
        RollingMode::PauseOnFailure,
        RollingMode::IgnoreFailure,
        RollingMode::Manual,
    ]
    .into_iter()
    .find(|m| mode_name(*m) == name)
}

/// `max_failed`: a number of hosts or a share of the push's target hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxFailed {
    /// `max_failed = 2`.
    Hosts(u32),
    /// `max_failed = "10%"` (0 to 100).
    Percent(u32),
}

impl MaxFailed {
    /// True when `failed` hosts out of `total` pass the threshold (the push stops): more than
    /// the number, or more than the share (Ansible's `max_fail_percentage` reading).
    pub fn exceeded(self, failed: usize, total: usize) -> bool {
        match self {
            MaxFailed::Hosts(n) => failed > n as usize,
            MaxFailed::Percent(p) => failed.saturating_mul(100) > total.saturating_mul(p as usize),
        }
    }
}

impl std::fmt::Display for MaxFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxFailed::Hosts(n) => write!(f, "{n}"),
            MaxFailed::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `verify`: how delivered bytes are checked after the push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Sizes from JOB's file log against the source's.
    Size,
    /// A `fast_execute_script` job hashing the files on sources and targets.
    Sha256,
}

impl Verify {
    /// `"size"` or `"sha256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verify::Size => "size",
            Verify::Sha256 => "sha256",
        }
    }
}

/// `rolling` as read, before the checks that need the API family and the hosts.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawRolling {
    pub(crate) span: Option<Span>,
    pub(crate) expression: Option<Located<String>>,
    pub(crate) sources_per_batch: Option<Located<i64>>,
    pub(crate) files_per_source: Option<Located<i64>>,
    pub(crate) mode: Option<Located<String>>,
    pub(crate) max_failed: Option<Located<MaxFailed>>,
}

/// The release keys of a push as read.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawRelease {
    pub(crate) rolling: Option<RawRolling>,
    pub(crate) gate: Option<Located<bool>>,
    pub(crate) verify: Option<Located<Verify>>,
    pub(crate) callback_url: Option<Located<String>>,
}

/// Where a byte range of a string's value is in the file: inside the quotes when the string is
/// written without escapes (the value's bytes are the file's), else the whole string.
pub(crate) fn span_inside(
    text: &str,
    string: Span,
    value: &str,
    range: std::ops::Range<usize>,
) -> Span {
    let written = text
        .get(string.start..string.start + string.len)
        .unwrap_or("");
    let inner = written
        .get(1..written.len().saturating_sub(1))
        .unwrap_or("");
    if written.len() >= 2 && inner == value {
        let len = range
            .len()
            .max(1)
            .min(value.len().saturating_sub(range.start).max(1));
        Span {
            file: string.file,
            start: string.start + 1 + range.start,
            len,
        }
    } else {
        string
    }
}

/// The parsed expression, or the diagnostic at the part JOB refuses.
pub(crate) fn parse_expression(
    text: &str,
    expression: &Located<String>,
) -> Result<RollingExpr, crate::Problem> {
    RollingExpr::parse(&expression.value).map_err(|e: RollingExprError| {
        let at = span_inside(text, expression.span, &expression.value, e.span());
        crate::Problem::error(
            crate::ParseErrorKind::InvalidRolling.code(),
            format!(
                "JOB refuses this rolling expression (code {})",
                e.job_code()
            ),
        )
        .with_label(at, e.to_string())
        .with_help("for example \"1 30% 100%\": one host, then 30% of the hosts, then the rest")
    })
}

/// True when the hosts are static addresses only (plan-made batches need them).
pub(crate) fn is_static(hosts: &HostSet) -> bool {
    hosts.dynamic_groups.is_empty() && hosts.topo_nodes.is_empty()
}

//! JOB's rolling execution (v3 `rolling_config`): the batch expression exactly as JOB parses
//! and applies it (bk-job `engine/rolling/RollingExpr`, its four `RollingExprPart`s and
//! `RollingBatchExecuteObjectsResolver`), the rolling modes, and the request's
//! `rolling_config` object.
//!
//! An expression is parts separated by single spaces; batch `k` uses part `k`, and the last
//! part repeats until every host has a batch:
//!
//! | part  | batch size                                              |
//! |-------|---------------------------------------------------------|
//! | `N`   | `N` hosts                                               |
//! | `N%`  | `ceil(total * N / 100)` hosts, `N` in 1..=100           |
//! | `+N`  | the previous batch's size plus `N` (`N` for a first batch)  |
//! | `*N`  | the previous batch's size times `N` (`N` for a first batch) |
//!
//! Each batch is cut to the hosts left. `"1 30% 100%"` over 16 hosts is 1, 5 and 10.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// JOB's check on the number of batches (`MAX_ALLOWED_ROLLING_BATCH_SIZE`). JOB compares
/// before it opens each new batch, so the resolver refuses only a 502nd batch: 501 batches pass.
pub const MAX_ALLOWED_ROLLING_BATCH_SIZE: usize = 500;

/// One part of an expression: how many hosts its batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RollingExprPart {
    /// `N`: a fixed number of hosts (JOB's `QuantityRollingExprPart`).
    Quantity(u32),
    /// `N%`: a share of all the step's hosts, rounded up (`PercentRollingExprPart`).
    Percent(u32),
    /// `+N`: the previous batch plus `N` hosts (`PlusIncrementRollingExprPart`).
    PlusIncrement(u32),
    /// `*N`: the previous batch times `N` (`ExponentIncrementRollingExprPart`).
    MultiplyIncrement(u32),
}

impl RollingExprPart {
    /// The size of the next batch over `total` hosts, after a batch of `previous` hosts (none
    /// for the first), before it is cut to the hosts left.
    fn batch_size(self, total: usize, previous: Option<usize>) -> usize {
        let n = self.number();
        match self {
            RollingExprPart::Quantity(_) => n,
            // JOB: (total * percent + 100 - 1) / 100.
            RollingExprPart::Percent(_) => (total.saturating_mul(n)).div_ceil(100),
            RollingExprPart::PlusIncrement(_) => previous.map_or(n, |p| p.saturating_add(n)),
            RollingExprPart::MultiplyIncrement(_) => previous.map_or(n, |p| p.saturating_mul(n)),
        }
    }

    fn number(self) -> usize {
        match self {
            RollingExprPart::Quantity(n)
            | RollingExprPart::Percent(n)
            | RollingExprPart::PlusIncrement(n)
            | RollingExprPart::MultiplyIncrement(n) => n as usize,
        }
    }
}

impl fmt::Display for RollingExprPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollingExprPart::Quantity(n) => write!(f, "{n}"),
            RollingExprPart::Percent(n) => write!(f, "{n}%"),
            RollingExprPart::PlusIncrement(n) => write!(f, "+{n}"),
            RollingExprPart::MultiplyIncrement(n) => write!(f, "*{n}"),
        }
    }
}

/// A parsed rolling expression: its parts, each with where it is in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollingExpr {
    parts: Vec<(RollingExprPart, Range<usize>)>,
}

/// Why JOB refuses an expression. `span` is the byte range within the expression the problem
/// is at (empty for an empty expression).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollingExprError {
    /// Nothing but whitespace: JOB's bean validation answers `1240003` "Rolling expression
    /// cannot be blank".
    #[error("the rolling expression is blank: write batch sizes such as \"1 30% 100%\"")]
    Blank,
    /// A part that is none of `N`, `N%`, `+N`, `*N`, or an empty part (two spaces in a row,
    /// a leading space): JOB answers `1244026` "Invalid rolling strategy".
    #[error(
        "`{text}` is not a rolling batch: write a number of hosts (`10`), a percentage (`30%`), `+N` or `*N`, separated by single spaces"
    )]
    InvalidPart {
        /// The part as written (empty for an empty part).
        text: String,
        /// Where it is.
        span: Range<usize>,
    },
    /// `0`, `0%`, `+0`, `*0` or a percentage above 100: JOB answers `1244026`.
    #[error(
        "`{text}` is out of range: a batch needs at least 1 host, and a percentage is 1% to 100%"
    )]
    OutOfRange {
        /// The part as written.
        text: String,
        /// Where it is.
        span: Range<usize>,
    },
    /// A number above 2147483647 (Java's `Integer.parseInt` fails): JOB answers with an
    /// internal error (`1240002`) rather than a validation code.
    #[error("`{text}` is too large a number for JOB (at most 2147483647)")]
    NumberTooLarge {
        /// The part as written.
        text: String,
        /// Where it is.
        span: Range<usize>,
    },
}

impl RollingExprError {
    /// The byte range within the expression the error is at.
    pub fn span(&self) -> Range<usize> {
        match self {
            RollingExprError::Blank => 0..0,
            RollingExprError::InvalidPart { span, .. }
            | RollingExprError::OutOfRange { span, .. }
            | RollingExprError::NumberTooLarge { span, .. } => span.clone(),
        }
    }

    /// The code JOB answers a `fast_transfer_file` with this expression with.
    pub fn job_code(&self) -> i64 {
        match self {
            RollingExprError::Blank => crate::code::BAD_REQUEST,
            RollingExprError::InvalidPart { .. } | RollingExprError::OutOfRange { .. } => {
                crate::code::INVALID_ROLLING_EXPR
            }
            RollingExprError::NumberTooLarge { .. } => crate::code::INTERNAL_ERROR,
        }
    }
}

/// More batches than JOB allows: JOB answers `1244027` "Rolling batch can not be greater than
/// 500".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the expression makes more than {MAX_ALLOWED_ROLLING_BATCH_SIZE} batches over {total} hosts: use larger batches (a percentage, or `+N`/`*N`)"
)]
pub struct TooManyBatches {
    /// The hosts the batches were computed over.
    pub total: usize,
}

impl RollingExpr {
    /// Parses an expression as JOB does: JOB's `NotBlank` first (blank after trimming
    /// characters up to U+0020), then Java's `split(" ")` (trailing empty parts dropped), each
    /// part trimmed and matched against `^(\d+)%$`, `^(\d+)$`, `^\+(\d+)$`, `^\*(\d+)$` in
    /// that order (ASCII digits; Java's `$` also matches before one final line terminator).
    pub fn parse(text: &str) -> Result<RollingExpr, RollingExprError> {
        if java_trim(text, 0..text.len()).is_empty() {
            return Err(RollingExprError::Blank);
        }
        let parts = java_split_on_space(text)
            .into_iter()
            .map(|raw| {
                let span = java_trim(text, raw.clone());
                if span.is_empty() {
                    return Err(RollingExprError::InvalidPart {
                        text: String::new(),
                        span: empty_part_span(text, raw),
                    });
                }
                parse_part(&text[span.clone()], span.clone()).map(|p| (p, span))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RollingExpr { parts })
    }

    /// The parts, in order.
    pub fn parts(&self) -> impl Iterator<Item = RollingExprPart> + '_ {
        self.parts.iter().map(|(part, _)| *part)
    }

    /// The part batch `batch` (from 1) uses: its own, or the last one past the end (JOB's
    /// `nextRollingExprPart`).
    pub fn part_for_batch(&self, batch: usize) -> RollingExprPart {
        let index = batch.clamp(1, self.parts.len()) - 1;
        self.parts[index].0
    }

    /// Where part `index` (from 0) is in the text.
    pub fn span_of(&self, index: usize) -> Option<Range<usize>> {
        self.parts.get(index).map(|(_, span)| span.clone())
    }

    /// The batch sizes over `total` hosts, in order, as JOB's resolver computes them (none
    /// for no hosts).
    pub fn batch_sizes(&self, total: usize) -> Result<Vec<usize>, TooManyBatches> {
        let mut sizes: Vec<usize> = Vec::new();
        let mut left = total;
        while left > 0 {
            if sizes.len() > MAX_ALLOWED_ROLLING_BATCH_SIZE {
                return Err(TooManyBatches { total });
            }
            let part = self.part_for_batch(sizes.len() + 1);
            let size = part.batch_size(total, sizes.last().copied()).min(left);
            sizes.push(size);
            left -= size;
        }
        Ok(sizes)
    }
}

impl fmt::Display for RollingExpr {
    /// The parts separated by single spaces (the canonical form JOB would store).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// Java's `String.split(" ")`: every piece between single spaces, trailing empty pieces
/// dropped.
fn java_split_on_space(text: &str) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices(' ') {
        pieces.push(start..i);
        start = i + 1;
    }
    pieces.push(start..text.len());
    while pieces.len() > 1 && pieces.last().is_some_and(|r| r.is_empty()) {
        pieces.pop();
    }
    // Java drops trailing empties even down to none ("   ".split(" ") is empty); a blank
    // text was refused before, so at least one piece here is not empty.
    pieces
}

/// Where to point for an empty part: its own characters (only control characters), else the
/// space that makes it (the one before it, or after it at the start).
fn empty_part_span(text: &str, raw: Range<usize>) -> Range<usize> {
    if !raw.is_empty() {
        raw
    } else if raw.start > 0 {
        raw.start - 1..raw.start
    } else {
        0..text.len().min(1)
    }
}

/// Java's `String.trim()` over `range`: strips characters up to U+0020 at both ends.
fn java_trim(text: &str, range: Range<usize>) -> Range<usize> {
    let piece = &text[range.clone()];
    let is_trimmed = |c: char| c <= '\u{20}';
    let start = range.start + (piece.len() - piece.trim_start_matches(is_trimmed).len());
    let end = range.start + piece.trim_end_matches(is_trimmed).len();
    if start >= end {
        start..start
    } else {
        start..end
    }
}

/// One trimmed part against JOB's four patterns, in JOB's order.
fn parse_part(piece: &str, span: Range<usize>) -> Result<RollingExprPart, RollingExprError> {
    let body = strip_final_line_terminator(piece);
    let (kind, digits): (fn(u32) -> RollingExprPart, &str) = if let Some(d) = body.strip_suffix('%')
    {
        (RollingExprPart::Percent, d)
    } else if let Some(d) = body.strip_prefix('+') {
        (RollingExprPart::PlusIncrement, d)
    } else if let Some(d) = body.strip_prefix('*') {
        (RollingExprPart::MultiplyIncrement, d)
    } else {
        (RollingExprPart::Quantity, body)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RollingExprError::InvalidPart {
            text: piece.to_owned(),
            span,
        });
    }
    let Ok(n) = digits.parse::<i32>() else {
        return Err(RollingExprError::NumberTooLarge {
            text: piece.to_owned(),
            span,
        });
    };
    let part = kind(n.unsigned_abs());
    let in_range = n > 0 && !(matches!(part, RollingExprPart::Percent(_)) && n > 100);
    if !in_range {
        return Err(RollingExprError::OutOfRange {
            text: piece.to_owned(),
            span,
        });
    }
    Ok(part)
}

/// Java's `$` (without MULTILINE) also matches before a final line terminator; after
/// `trim()` only the ones above U+0020 can be left: NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR.
fn strip_final_line_terminator(piece: &str) -> &str {
    piece
        .strip_suffix(['\u{85}', '\u{2028}', '\u{2029}'])
        .unwrap_or(piece)
}

/// What JOB does after a batch (`rolling_config.mode`, JOB's `RollingModeEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i32", try_from = "i32")]
pub enum RollingMode {
    /// 1 (the default): a batch with a failed host fails the step and the job (status 4);
    /// `operate_step_instance` 2, 3 or 8 carries on.
    PauseOnFailure,
    /// 2: a failed batch is recorded as "ignore error" and the next batch starts.
    IgnoreFailure,
    /// 3: after every batch but the last, the step and job wait for a user (status 7) until
    /// `operate_step_instance` 13; a failed batch pauses as in mode 1.
    Manual,
}

impl RollingMode {
    /// The number on the wire.
    pub fn code(self) -> i32 {
        match self {
            RollingMode::PauseOnFailure => 1,
            RollingMode::IgnoreFailure => 2,
            RollingMode::Manual => 3,
        }
    }

    /// The mode for a number on the wire (none for a number JOB refuses, "Illegal rolling mode").
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            1 => Some(RollingMode::PauseOnFailure),
            2 => Some(RollingMode::IgnoreFailure),
            3 => Some(RollingMode::Manual),
            _ => None,
        }
    }
}

impl From<RollingMode> for i32 {
    fn from(mode: RollingMode) -> i32 {
        mode.code()
    }
}

impl TryFrom<i32> for RollingMode {
    type Error = String;
    fn try_from(code: i32) -> Result<Self, String> {
        RollingMode::from_code(code).ok_or_else(|| format!("Illegal rolling mode: {code}"))
    }
}

/// `rolling_config.type` values (JOB's `RollingTypeEnum`).
pub mod rolling_type {
    /// Batches of target hosts, by `expression` (the default).
    pub const TARGET_EXECUTE_OBJECT: i32 = 1;
    /// Batches of source files, by `file_source` (server files only, else `1244035`).
    pub const FILE_SOURCE: i32 = 2;
}

/// `rolling_config.execution_mode` values (JOB's `RollingExecutionModeEnum`).
pub mod execution_mode {
    /// One batch after the other (the default).
    pub const SERIAL: i32 = 1;
    /// Staggered batches started on a timer (targets only; at most 200 batches).
    pub const PARALLEL: i32 = 2;
}

/// v3 `fast_transfer_file`'s `rolling_config` (JOB's `EsbRollingConfigDTO`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollingConfigV3 {
    /// [`rolling_type`]: 1 targets (default), 2 source files.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub rolling_type: Option<i32>,
    /// What happens after a batch (default: pause on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RollingMode>,
    /// [`execution_mode`]: 1 serial (default), 2 parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<i32>,
    /// The batches of target hosts (required for type 1): see [`RollingExpr`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// The batches of source files (required for type 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_source: Option<FileSourceRollingConfigV3>,
    /// Parallel mode: fixed delay between batch starts, ms (0 to 3600000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_start_wait_fixed_ms: Option<i64>,
    /// Parallel mode: lower bound of the random extra delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_start_wait_random_min_ms: Option<i64>,
    /// Parallel mode: upper bound of the random extra delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_start_wait_random_max_ms: Option<i64>,
}

/// `rolling_config.file_source` (JOB's `EsbFileSourceRollingConfigDTO`): each batch takes at
/// most this many source hosts, and at most this many files of each; absent means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSourceRollingConfigV3 {
    /// Source hosts per batch (positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_execute_object_num_in_batch: Option<i32>,
    /// Files of one source host per batch (positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_num_of_single_execute_object: Option<i32>,
}

/// One source's share of a source-file batch (`rolling_config.type` 2): a run of its hosts
/// and a run of its `file_list` entries, as indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSlice {
    /// The `file_source_list` entry.
    pub source: usize,
    /// Its hosts in this batch.
    pub hosts: Range<usize>,
    /// Its files in this batch.
    pub files: Range<usize>,
}

/// The batches of source files JOB makes (`FileSourceBatchCalculatorImpl.calc`), given each
/// source's number of hosts and of `file_list` entries: a source over either limit is split
/// into hosts-groups × files-groups batches; otherwise it and as many following sources as fit
/// within both limits (summed) make one batch. A limit that is absent or not positive is no
/// limit.
pub fn file_source_batches(
    sources: &[(usize, usize)],
    config: &FileSourceRollingConfigV3,
) -> Vec<Vec<SourceSlice>> {
    let limit = |v: Option<i32>| {
        v.filter(|n| *n > 0)
            .map_or(usize::MAX, |n| n.unsigned_abs() as usize)
    };
    let max_hosts = limit(config.max_execute_object_num_in_batch);
    let max_files = limit(config.max_file_num_of_single_execute_object);
    let mut batches = Vec::new();
    let mut i = 0;
    while i < sources.len() {
        let (hosts, files) = sources[i];
        if files > max_files || hosts > max_hosts {
            for host_group in java_groups(hosts, max_hosts) {
                for file_group in java_groups(files, max_files) {
                    batches.push(vec![SourceSlice {
                        source: i,
                        hosts: host_group.clone(),
                        files: file_group,
                    }]);
                }
            }
            i += 1;
            continue;
        }
        // Greedy: the sources from `i` whose summed hosts and files stay within the limits.
        let (mut sum_hosts, mut sum_files, mut end) = (hosts, files, i + 1);
        while let Some(&(h, f)) = sources.get(end) {
            sum_hosts = sum_hosts.saturating_add(h);
            sum_files = sum_files.saturating_add(f);
            if sum_files > max_files || sum_hosts > max_hosts {
                break;
            }
            end += 1;
        }
        batches.push(
            (i..end)
                .map(|s| SourceSlice {
                    source: s,
                    hosts: 0..sources[s].0,
                    files: 0..sources[s].1,
                })
                .collect(),
        );
        i = end;
    }
    batches
}

/// JOB's do-while grouping: `0..n` in runs of at most `max` (one empty run for `n` = 0).
fn java_groups(n: usize, max: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start: usize = 0;
    loop {
        let end = start.saturating_add(max).min(n);
        groups.push(start..end);
        start = end;
        if start >= n {
            return groups;
        }
    }
}

#[cfg(test)]
#[path = "rolling_tests.rs"]
mod tests;

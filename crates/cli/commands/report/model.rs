//! A run read back from its journal, for people.
//!
//! Lines are read as JSON values, not as the executor's typed records: a journal is hostile
//! input (edited, truncated, written by an older or newer version), and a line of a kind this
//! version does not know, or one missing a field, is still shown rather than dropped. Every
//! string is made printable here (control characters replaced), so no renderer can be handed
//! a terminal escape sequence; each renderer still escapes for its own format.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use plan_executor::{HostResult, JOURNAL_FORMAT_VERSION, PushStatus};
use serde_json::{Map, Value};

use crate::render::printable;

/// A point in time as the journal wrote it (RFC 3339).
pub(crate) type Time = DateTime<FixedOffset>;

/// The largest journal read: a run of 10,000 pushes writes a few tens of MiB.
const MAX_JOURNAL_BYTES: u64 = 512 * 1024 * 1024;
/// Longest text kept from one field (a message, a label); log excerpts keep their lines.
const MAX_FIELD_CHARS: usize = 2_000;
/// Lines kept from the end of one host's log excerpt.
pub(crate) const LOG_TAIL_LINES: usize = 20;

/// A whole run: every segment (the first process and each `--resume`), every push.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) path: PathBuf,
    pub(crate) run_id: String,
    pub(crate) plan: String,
    pub(crate) plan_file: String,
    pub(crate) api: String,
    /// The plan's content hash (`sha256:...`), when the journal recorded it.
    pub(crate) plan_hash: Option<String>,
    /// `run_started.pushes`: push name -> sha256 of its request body.
    pub(crate) push_hashes: BTreeMap<String, String>,
    pub(crate) segments: Vec<Segment>,
    /// In the plan's order when the plan was read (stages known), else as first journaled.
    pub(crate) pushes: Vec<Push>,
    /// Run-level lines of kinds this version does not know.
    pub(crate) marks: Vec<Mark>,
    /// What reading did with lines it could not use, in file order.
    pub(crate) notes: Vec<String>,
    /// A `run_started` line was read.
    started: bool,
    /// Where each push is in `pushes` while the journal is read.
    index: HashMap<String, usize>,
}

/// One process's part of the run.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    pub(crate) operator: String,
    pub(crate) host: String,
    pub(crate) started: Option<Time>,
    pub(crate) ended: Option<Time>,
    /// `succeeded`, `failed`, `interrupted`; `None` when the process never wrote its end.
    pub(crate) outcome: Option<String>,
    /// A `--resume` of the run (every segment but the first).
    pub(crate) resumed: bool,
    /// `--force`, TLS verification off, rebuilt from JOB: recorded flags worth reading.
    pub(crate) flags: Vec<&'static str>,
    /// The last time any line of this segment was written.
    pub(crate) last_seen: Option<Time>,
}

/// One push of the run.
#[derive(Debug, Default)]
pub(crate) struct Push {
    pub(crate) name: String,
    pub(crate) stage: Option<usize>,
    pub(crate) attempts: Vec<Attempt>,
    /// The last `push_finished` status (snake case, as journaled).
    pub(crate) status: Option<String>,
    pub(crate) finished: Option<Time>,
    /// Terminations, lost jobs, refreshes, and lines of kinds this version does not know
    /// (batches, confirmations, verifications...).
    pub(crate) marks: Vec<Mark>,
    /// Each target host's latest result over the run's attempts, in first-seen order.
    pub(crate) hosts: Vec<HostResult>,
    /// Where each host (by [`HostResult::key`]) is in `hosts`.
    host_index: HashMap<String, usize>,
}

/// One submission of a push and the job it became.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    pub(crate) number: u32,
    /// The intent was written (the push was about to be sent).
    pub(crate) intent: Option<Time>,
    pub(crate) submitted: Option<Time>,
    /// START accepted (v3 two-phase); the job runs from here.
    pub(crate) started: Option<Time>,
    pub(crate) finished: Option<Time>,
    pub(crate) two_phase: bool,
    pub(crate) job: Option<i64>,
    /// JOB's job status number at its end.
    pub(crate) job_status: Option<i64>,
    pub(crate) targets: usize,
    /// The batch this job sends (index, count), when the plan cuts the push into batches.
    pub(crate) batch: Option<(u32, u32)>,
    /// A retry inside the same JOB job (`operate_step_instance`), not a new submission.
    pub(crate) in_job: bool,
    /// JOB stopped this attempt on a failure, and its failed hosts were retried inside the
    /// same job (the next attempt).
    pub(crate) retried_in_job: bool,
    /// JOB refused the submission, or its answer was lost.
    pub(crate) submit_error: Option<String>,
    pub(crate) hosts: Vec<HostResult>,
}

impl Attempt {
    /// `batch 2/4`, or nothing.
    pub(crate) fn batch_label(&self) -> Option<String> {
        self.batch.map(|(i, n)| format!("batch {i}/{n}"))
    }

    /// When the job began to run, as far as the journal tells: START for a two-phase
    /// submission, else the submission's answer.
    pub(crate) fn running_from(&self) -> Option<Time> {
        if self.two_phase {
            self.started.or(self.submitted)
        } else {
            self.submitted
        }
    }

    /// JOB's success (status 3) with no host failing.
    pub(crate) fn succeeded(&self) -> bool {
        self.job_status == Some(3) && self.hosts.iter().all(HostResult::is_success)
    }
}

/// One batch of a push the plan cut into batches, over its jobs.
pub(crate) struct BatchSummary<'a> {
    /// Its jobs: 1, plus one per retry.
    pub(crate) jobs: usize,
    /// Its last attempt.
    pub(crate) last: &'a Attempt,
    /// Per host reached (by [`HostResult::key`]), whether its latest result is a success.
    pub(crate) hosts: std::collections::BTreeMap<String, bool>,
}

/// Something that happened at one time: a line worth showing on the timeline.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub(crate) at: Option<Time>,
    /// The record kind (`push_terminate_requested`, or a kind this version does not know).
    pub(crate) kind: String,
    /// A short description for people.
    pub(crate) text: String,
    /// The batch a line is about (`b2`), drawn on the timeline: a line with a numeric
    /// `batch`, whatever its kind.
    pub(crate) batch: Option<String>,
    /// Its `status` says `failed`.
    pub(crate) failed: bool,
}

impl Run {
    /// Reads a journal; `stages` (push name -> stage), when the plan was read, orders the
    /// pushes and draws the stage boundaries.
    pub(crate) fn read(path: &Path, stages: &BTreeMap<String, usize>) -> anyhow::Result<Run> {
        let text = read_bounded(path)?;
        let mut run = Run {
            path: path.to_owned(),
            run_id: path
                .file_stem()
                .map(|s| printable(&s.to_string_lossy()))
                .unwrap_or_default(),
            ..Run::default()
        };
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        let last = lines.last().map(|(n, _)| *n);
        let mut unknown_kinds: BTreeMap<String, usize> = BTreeMap::new();
        for &(index, line) in &lines {
            let number = index + 1;
            let record = match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(record)) => record,
                _ if Some(index) == last => {
                    run.notes
                        .push(format!("line {number}: last line truncated: ignored"));
                    continue;
                }
                _ => {
                    run.notes
                        .push(format!("line {number}: not a journal line: ignored"));
                    continue;
                }
            };
            if !run.apply(&record, number) {
                let kind = text_of(&record, "type").unwrap_or_else(|| "(no type)".into());
                *unknown_kinds.entry(kind).or_default() += 1;
            }
        }
        for (kind, n) in unknown_kinds {
            run.notes.push(format!(
                "{n} line{} of kind `{kind}`, which this version does not know: shown as events",
                if n == 1 { "" } else { "s" }
            ));
        }
        if run.segments.is_empty() && run.pushes.is_empty() {
            anyhow::bail!(
                "journal `{}` holds no journal line: nothing to report",
                path.display()
            );
        }
        if !run.started {
            run.notes.push(
                "no `run_started` line: the plan, its hash and the first operator are unknown"
                    .into(),
            );
        }
        run.order_pushes(stages);
        Ok(run)
    }

    /// Folds one line in; false when its kind is not one this version knows (it is then
    /// kept as an event of its push, or of the run).
    fn apply(&mut self, r: &Map<String, Value>, number: usize) -> bool {
        let at = time_of(r, "at");
        if let Some(segment) = self.segments.last_mut()
            && at.is_some()
        {
            segment.last_seen = at.max(segment.last_seen);
        }
        let kind = text_of(r, "type").unwrap_or_default();
        match kind.as_str() {
            "run_started" => self.run_started(r, number, at),
            "run_resumed" => self.segments.push(Segment {
                resumed: true,
                ..segment_of(r, at)
            }),
            "run_finished" => {
                if let Some(segment) = self.segments.last_mut() {
                    segment.ended = at;
                    segment.outcome = text_of(r, "status").map(|s| s.replace('_', " "));
                }
            }
            "push_submitting" => {
                let attempt = Attempt {
                    number: number_of(r, "attempt").unwrap_or(0) as u32,
                    intent: at,
                    two_phase: r.get("two_phase").and_then(Value::as_bool) == Some(true),
                    targets: r
                        .get("targets")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len),
                    batch: batch_of(r),
                    ..Attempt::default()
                };
                let push = self.push(r);
                // A `not_sent` intent's attempt number is used again by the next intent.
                push.attempts.retain(|a| a.number != attempt.number);
                push.attempts.push(attempt);
            }
            "push_submitted" => {
                let job = r
                    .get("job")
                    .and_then(|j| number_of(j.as_object()?, "job_instance_id"));
                if let Some(a) = self.attempt(r) {
                    a.submitted = at;
                    a.job = job;
                }
            }
            "push_started" => {
                if let Some(a) = self.attempt(r) {
                    a.started = at;
                }
            }
            "push_submit_failed" => self.submit_failed(r, at),
            "push_attempt_finished" => self.attempt_finished(r, at),
            "push_finished" => {
                let push = self.push(r);
                push.status = text_of(r, "status");
                push.finished = at;
                // An attempt whose end JOB never reported (a refused retry, an interrupt)
                // stops being followed here.
                for a in push.attempts.iter_mut().filter(|a| a.finished.is_none()) {
                    a.finished = at;
                }
            }
            "push_retry_requested" => self.retry_requested(r, at),
            "push_batch_finished" => self.batch_finished(r, at, &kind),
            "push_awaiting_confirmation" => {
                let point = point_of(r);
                self.mark(r, at, &kind, format!("waiting for a confirmation: {point}"));
            }
            "push_confirmed" => {
                let by = text_of(r, "by").unwrap_or_default();
                let point = point_of(r);
                self.mark(r, at, &kind, format!("confirmed by {by}: {point}"));
            }
            "push_verified" => {
                let text = verification_of(r);
                self.mark(r, at, &kind, text);
            }
            "push_terminate_requested" => {
                let reason = text_of(r, "reason").unwrap_or_default();
                self.mark(r, at, &kind, format!("terminate requested ({reason})"));
            }
            "push_job_lost" => {
                let message = text_of(r, "message").unwrap_or_default();
                self.mark(r, at, &kind, format!("job lost in JOB: {message}"));
            }
            "push_rebuilt" => {
                let jobs = number_of(r, "jobs").unwrap_or(0);
                self.mark(r, at, &kind, format!("rebuilt from JOB ({jobs} jobs)"));
            }
            "refresh" => {
                self.mark(r, at, &kind, "refreshed before the run".into());
            }
            _ => {
                let text = describe(r);
                self.mark(r, at, &kind, text);
                return false;
            }
        }
        true
    }

    fn run_started(&mut self, r: &Map<String, Value>, number: usize, at: Option<Time>) {
        self.started = true;
        if !self.segments.is_empty() {
            self.notes.push(format!(
                "line {number}: a second `run_started`: read as the start of another segment"
            ));
        }
        match number_of(r, "format_version") {
            Some(v) if v == i64::from(JOURNAL_FORMAT_VERSION) => {}
            Some(v) => self.notes.push(format!(
                "written in journal format {v} (this version writes {JOURNAL_FORMAT_VERSION}): rendered from the fields it recognises"
            )),
            None => self.notes.push(
                "no journal format version: rendered from the fields it recognises".into(),
            ),
        }
        if let Some(id) = text_of(r, "run_id") {
            self.run_id = id;
        }
        self.plan = text_of(r, "plan").unwrap_or_default();
        self.plan_file = text_of(r, "plan_file").unwrap_or_default();
        self.api = text_of(r, "api").unwrap_or_default();
        self.plan_hash = text_of(r, "plan_hash");
        if let Some(pushes) = r.get("pushes").and_then(Value::as_object) {
            self.push_hashes = pushes
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect();
        }
        // Every push of the run, in case some never wrote a line.
        if let Some(pushes) = r.get("pushes").and_then(Value::as_object) {
            for name in pushes.keys() {
                self.push_named(&printable(name));
            }
        }
        self.segments.push(segment_of(r, at));
    }

    fn submit_failed(&mut self, r: &Map<String, Value>, at: Option<Time>) {
        let not_sent = r.get("not_sent").and_then(Value::as_bool) == Some(true);
        let push = self.push(r);
        if not_sent {
            // Never sent: the attempt did not happen.
            let number = number_of(r, "attempt").unwrap_or(0) as u32;
            push.attempts.retain(|a| a.number != number);
            return;
        }
        let code = number_of(r, "code").map_or(String::new(), |c| format!(" ({c})"));
        let unknown = r.get("outcome_unknown").and_then(Value::as_bool) == Some(true);
        let message = text_of(r, "message").unwrap_or_default();
        let text = if unknown {
            format!("outcome unknown{code}: {message}")
        } else {
            format!("refused{code}: {message}")
        };
        if let Some(a) = self.attempt(r) {
            a.submit_error = Some(text);
            a.finished = at;
        }
    }

    fn attempt_finished(&mut self, r: &Map<String, Value>, at: Option<Time>) {
        let hosts: Vec<HostResult> = r
            .get("hosts")
            .and_then(Value::as_array)
            .map(|hosts| hosts.iter().filter_map(host_of).collect())
            .unwrap_or_default();
        let job_status = number_of(r, "job_status");
        let job = number_of(r, "job_instance_id");
        let push = self.push(r);
        for h in &hosts {
            push.record_host(h.clone());
        }
        if let Some(a) = self.attempt(r) {
            a.finished = at;
            a.job_status = job_status;
            a.job = a.job.or(job);
            a.hosts = hosts;
        }
    }

    /// A retry of a v3 job's failed hosts inside the same job: an attempt that runs from
    /// here (no new submission, no queue).
    fn retry_requested(&mut self, r: &Map<String, Value>, at: Option<Time>) {
        let job = r
            .get("job")
            .and_then(|j| number_of(j.as_object()?, "job_instance_id"));
        let attempt = Attempt {
            number: number_of(r, "attempt").unwrap_or(0) as u32,
            intent: at,
            submitted: at,
            job,
            in_job: true,
            targets: r.get("hosts").and_then(Value::as_array).map_or(0, Vec::len),
            ..Attempt::default()
        };
        let push = self.push(r);
        push.attempts.retain(|a| a.number != attempt.number);
        // The attempt it retries ended when JOB stopped on its failure; its span ends here
        // at the latest.
        if let Some(previous) = push
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.job == attempt.job && a.finished.is_none())
        {
            previous.finished = at;
            previous.retried_in_job = true;
        }
        push.attempts.push(attempt);
    }

    /// One of JOB's rolling batches finished: an event, and its hosts' results.
    fn batch_finished(&mut self, r: &Map<String, Value>, at: Option<Time>, kind: &str) {
        let hosts: Vec<HostResult> = r
            .get("hosts")
            .and_then(Value::as_array)
            .map(|hosts| hosts.iter().filter_map(host_of).collect())
            .unwrap_or_default();
        let ok = hosts.iter().filter(|h| h.is_success()).count();
        let text = format!(
            "batch {}/{} {}: {ok} of {} hosts ok",
            number_of(r, "batch").unwrap_or(0),
            number_of(r, "batches").unwrap_or(0),
            text_of(r, "status").unwrap_or_default().replace('_', " "),
            hosts.len()
        );
        let push = self.push(r);
        for h in hosts {
            push.record_host(h);
        }
        self.mark(r, at, kind, text);
    }

    /// The push a line names (created when first named).
    fn push(&mut self, r: &Map<String, Value>) -> &mut Push {
        let name = text_of(r, "push").unwrap_or_default();
        self.push_named(&name)
    }

    fn push_named(&mut self, name: &str) -> &mut Push {
        let index = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.pushes.push(Push {
                    name: name.to_owned(),
                    ..Push::default()
                });
                self.index.insert(name.to_owned(), self.pushes.len() - 1);
                self.pushes.len() - 1
            }
        };
        &mut self.pushes[index]
    }

    /// The attempt a line names (its `attempt`, else the push's latest).
    fn attempt(&mut self, r: &Map<String, Value>) -> Option<&mut Attempt> {
        let number = number_of(r, "attempt");
        let push = self.push(r);
        match number {
            Some(n) => push
                .attempts
                .iter_mut()
                .rev()
                .find(|a| i64::from(a.number) == n),
            None => push.attempts.last_mut(),
        }
    }

    fn mark(&mut self, r: &Map<String, Value>, at: Option<Time>, kind: &str, text: String) {
        let mark = Mark {
            at,
            kind: printable(kind),
            text,
            batch: number_of(r, "batch").map(|n| format!("b{n}")),
            failed: text_of(r, "status").as_deref() == Some("failed"),
        };
        if r.contains_key("push") {
            self.push(r).marks.push(mark);
        } else {
            self.marks.push(mark);
        }
    }

    fn order_pushes(&mut self, stages: &BTreeMap<String, usize>) {
        for push in &mut self.pushes {
            push.stage = stages.get(&push.name).copied();
        }
        if !stages.is_empty() {
            // Stable: within a stage, the order they were first journaled (file order).
            self.pushes.sort_by_key(|p| p.stage.unwrap_or(usize::MAX));
        }
    }

    /// The run's first and last times.
    pub(crate) fn span(&self) -> Option<(Time, Time)> {
        let times = self.times();
        Some((*times.iter().min()?, *times.iter().max()?))
    }

    fn times(&self) -> Vec<Time> {
        let mut times: Vec<Time> = Vec::new();
        for s in &self.segments {
            times.extend([s.started, s.ended, s.last_seen].into_iter().flatten());
        }
        for p in &self.pushes {
            times.extend(p.finished);
            times.extend(p.marks.iter().filter_map(|m| m.at));
            for a in &p.attempts {
                times.extend(
                    [a.intent, a.submitted, a.started, a.finished]
                        .into_iter()
                        .flatten(),
                );
            }
        }
        times.extend(self.marks.iter().filter_map(|m| m.at));
        times
    }

    /// How the run stands: the last segment's end, or `unfinished`.
    pub(crate) fn outcome(&self) -> String {
        match self.segments.last().and_then(|s| s.outcome.as_deref()) {
            Some(outcome) => outcome.replace('_', " "),
            None => "unfinished".into(),
        }
    }

    /// Whether some segment ended interrupted.
    pub(crate) fn interruptions(&self) -> impl Iterator<Item = &Segment> {
        self.segments
            .iter()
            .filter(|s| s.outcome.as_deref() == Some("interrupted"))
    }

    /// Pushes per final status label (`succeeded`, `failed`, `not journaled`...), in a
    /// stable order.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for p in &self.pushes {
            *counts.entry(p.status_label()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// Every host of the run once (by key), in first-seen order.
    pub(crate) fn hosts(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut known = HashSet::new();
        for p in &self.pushes {
            for key in p.host_keys() {
                if known.insert(key) {
                    seen.push(key.to_owned());
                }
            }
        }
        seen
    }

    /// The hosts (by key) whose latest result in some push is not a success.
    pub(crate) fn failed_host_keys(&self) -> HashSet<String> {
        self.pushes
            .iter()
            .flat_map(|p| p.failed_hosts().map(HostResult::key))
            .collect()
    }

    /// The started time of segment `i`'s start and its end (or last line).
    pub(crate) fn segment_bounds(&self, segment: &Segment) -> Option<(Time, Time)> {
        let start = segment.started?;
        let end = segment.ended.or(segment.last_seen).unwrap_or(start);
        Some((start, end.max(start)))
    }
}

impl Push {
    /// Whether attempt `i` runs again what an earlier attempt ran (the same batch, or the
    /// whole push): a retry, not the next batch.
    pub(crate) fn is_retry(&self, i: usize) -> bool {
        if self.attempts.get(i).is_some_and(|a| a.in_job) {
            return true;
        }
        let batch = self.attempts.get(i).map(|a| a.batch);
        self.attempts[..i.min(self.attempts.len())]
            .iter()
            .any(|a| Some(a.batch) == batch)
    }

    /// Per batch the plan cut the push into, in batch order (empty for a push not cut
    /// into batches).
    pub(crate) fn batches(&self) -> Vec<BatchSummary<'_>> {
        let mut batches: std::collections::BTreeMap<u32, BatchSummary<'_>> =
            std::collections::BTreeMap::new();
        for a in &self.attempts {
            let Some((index, _)) = a.batch else {
                continue;
            };
            let batch = batches.entry(index).or_insert(BatchSummary {
                jobs: 0,
                last: a,
                hosts: std::collections::BTreeMap::new(),
            });
            batch.jobs += 1;
            batch.last = a;
            // A retry reaches only the failed hosts: a host's latest result wins.
            for h in &a.hosts {
                batch.hosts.insert(h.key(), h.is_success());
            }
        }
        batches.into_values().collect()
    }

    /// How many of its attempts are retries.
    pub(crate) fn retries(&self) -> usize {
        (0..self.attempts.len())
            .filter(|&i| self.is_retry(i))
            .count()
    }

    /// The push's outcome for people: its `push_finished`, else what its last attempt says.
    pub(crate) fn status_label(&self) -> String {
        if let Some(status) = &self.status {
            return serde_json::from_value::<PushStatus>(Value::String(status.clone()))
                .map_or_else(|_| status.replace('_', " "), |s| s.label().to_owned());
        }
        match self.attempts.last() {
            None => "not journaled".into(),
            Some(a) if a.finished.is_none() => "unfinished".into(),
            Some(a) if a.succeeded() => "succeeded".into(),
            Some(_) => "failed".into(),
        }
    }

    /// The push's result on one host (its latest attempt that reached it).
    pub(crate) fn host(&self, key: &str) -> Option<&HostResult> {
        self.host_index.get(key).map(|&i| &self.hosts[i])
    }

    /// Its hosts' keys, in first-seen order.
    fn host_keys(&self) -> impl Iterator<Item = &str> {
        let mut keys: Vec<(&str, usize)> = self
            .host_index
            .iter()
            .map(|(k, &i)| (k.as_str(), i))
            .collect();
        keys.sort_unstable_by_key(|(_, i)| *i);
        keys.into_iter().map(|(k, _)| k)
    }

    /// A host's latest result replaces the one it had.
    fn record_host(&mut self, host: HostResult) {
        match self.host_index.get(&host.key()) {
            Some(&i) => self.hosts[i] = host,
            None => {
                self.host_index.insert(host.key(), self.hosts.len());
                self.hosts.push(host);
            }
        }
    }

    /// Hosts whose latest result is not a success.
    pub(crate) fn failed_hosts(&self) -> impl Iterator<Item = &HostResult> {
        self.hosts.iter().filter(|h| !h.is_success())
    }
}

/// One host of a `push_attempt_finished`, made printable; a host that does not read is left
/// out (the attempt still shows).
fn host_of(value: &Value) -> Option<HostResult> {
    let mut host: HostResult = serde_json::from_value(value.clone()).ok()?;
    host.host = clip(&printable(&host.host));
    host.label = clip(&printable(&host.label));
    host.log_excerpt = host.log_excerpt.map(|log| log_tail(&log));
    Some(host)
}

/// The last [`LOG_TAIL_LINES`] lines of a log, each printable and clipped.
fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[from..]
        .iter()
        .map(|l| clip(&printable(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn segment_of(r: &Map<String, Value>, at: Option<Time>) -> Segment {
    let mut flags = Vec::new();
    if r.get("force").and_then(Value::as_bool) == Some(true) {
        flags.push("forced");
    }
    if r.get("insecure_skip_tls_verify").and_then(Value::as_bool) == Some(true) {
        flags.push("TLS verification off");
    }
    if r.get("rebuilt_from_job").and_then(Value::as_bool) == Some(true) {
        flags.push("rebuilt from JOB");
    }
    Segment {
        operator: text_of(r, "user").unwrap_or_default(),
        host: text_of(r, "host").unwrap_or_default(),
        started: at,
        last_seen: at,
        flags,
        ..Segment::default()
    }
}

/// A line of a kind this version does not know, in a few words: its scalar fields.
fn describe(r: &Map<String, Value>) -> String {
    let kind = text_of(r, "type").unwrap_or_else(|| "event".into());
    let fields: Vec<String> = r
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "type" | "push" | "at"))
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(a) => format!("{} items", a.len()),
                _ => return None,
            };
            Some(format!("{k}={value}"))
        })
        .take(8)
        .collect();
    let text = if fields.is_empty() {
        kind.replace('_', " ")
    } else {
        format!("{} ({})", kind.replace('_', " "), fields.join(", "))
    };
    clip(&printable(&text))
}

/// A line's `batch` (`{"index", "count"}`), when it has one.
fn batch_of(r: &Map<String, Value>) -> Option<(u32, u32)> {
    let batch = r.get("batch")?.as_object()?;
    let index = u32::try_from(number_of(batch, "index")?).ok()?;
    let count = u32::try_from(number_of(batch, "count")?).ok()?;
    Some((index, count))
}

/// Where a push waits for a person: `its gate`, `after batch 2/4 (a host failed)`.
fn point_of(r: &Map<String, Value>) -> String {
    let Some(point) = r.get("point").and_then(Value::as_object) else {
        return "-".into();
    };
    match text_of(point, "kind").as_deref() {
        Some("gate") => "its gate".into(),
        Some("batch") => format!(
            "after batch {}/{}{}",
            number_of(point, "batch").unwrap_or(0),
            number_of(point, "batches").unwrap_or(0),
            if point.get("failed").and_then(Value::as_bool) == Some(true) {
                " (a host failed)"
            } else {
                ""
            }
        ),
        other => other.unwrap_or("-").to_owned(),
    }
}

/// A verification's verdict in a few words.
fn verification_of(r: &Map<String, Value>) -> String {
    let Some(v) = r.get("verification").and_then(Value::as_object) else {
        return "verified".into();
    };
    let method = text_of(v, "method").unwrap_or_default();
    let count = |key: &str| v.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    let mut text = format!(
        "verified ({method}): {} of {} hosts hold the sources' files",
        number_of(v, "verified").unwrap_or(0),
        number_of(v, "hosts").unwrap_or(0)
    );
    if count("differing") > 0 {
        text.push_str(&format!(", {} differ", count("differing")));
    }
    if count("cannot_verify") > 0 {
        text.push_str(&format!(
            ", {} could not be checked",
            count("cannot_verify")
        ));
    }
    if let Some(error) = text_of(v, "error") {
        text.push_str(&format!("; {error}"));
    }
    text
}

fn text_of(r: &Map<String, Value>, key: &str) -> Option<String> {
    r.get(key)
        .and_then(Value::as_str)
        .map(|s| clip(&printable(s)))
}

fn number_of(r: &Map<String, Value>, key: &str) -> Option<i64> {
    r.get(key).and_then(Value::as_i64)
}

fn time_of(r: &Map<String, Value>, key: &str) -> Option<Time> {
    DateTime::parse_from_rfc3339(r.get(key)?.as_str()?).ok()
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn read_bounded(path: &Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read journal `{}`: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_JOURNAL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read journal `{}`: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_JOURNAL_BYTES {
        anyhow::bail!(
            "journal `{}` is larger than {} MiB: not a journal this version reports on",
            path.display(),
            MAX_JOURNAL_BYTES / 1024 / 1024
        );
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

//! The request log: every answered call, without credentials, kept in memory for tests and
//! appended to `ROOT/.jobsim/requests.jsonl`. Both are bounded, so a simulator under load
//! or attack stays flat: the memory log lets its oldest entries go past a byte budget, the
//! file is rotated to `requests.jsonl.1` past the same budget, and a recorded body past
//! [`RECORDED_BODY_MAX`] keeps only its top-level scalars and its size.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::FaultKind;

/// One API call as recorded in `ROOT/.jobsim/requests.jsonl` (credentials removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Wall-clock time of the answer (RFC 3339).
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Request path (no query string).
    pub path: String,
    /// `"esb"` or `"gateway"`.
    pub front: String,
    /// API name, e.g. `fast_push_file`; empty for unknown paths.
    pub api: String,
    /// Parameters (JSON body or query) with credentials removed.
    pub body: Value,
    /// HTTP status answered; 0 when the connection was dropped on purpose.
    pub http_status: u16,
    /// The `code` of the answer body, when it had one.
    pub code: Option<i64>,
    /// The job created by this call, if any.
    pub job_instance_id: Option<u64>,
    /// The `[[fault]]` kind applied to this call, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultKind>,
}

impl RecordedRequest {
    /// A call that has arrived, before anything about it is known but its method and path.
    pub(crate) fn arrived(method: &str, path: &str) -> Self {
        Self {
            time: String::new(),
            method: method.to_owned(),
            path: path.to_owned(),
            front: String::new(),
            api: String::new(),
            body: Value::Null,
            http_status: 0,
            code: None,
            job_instance_id: None,
            fault: None,
        }
    }
}

/// The largest request body (serialized) the log keeps whole.
pub(crate) const RECORDED_BODY_MAX: usize = 64 * 1024;

/// Longest string kept from the top level of a body that was too large to keep whole.
const SUMMARY_STRING_MAX: usize = 256;

/// Request fields that are credentials: never recorded.
const SECRET_KEYS: [&str; 6] = [
    "bk_app_secret",
    "bk_token",
    "access_token",
    "bk_access_token",
    "app_secret",
    "bk_signature",
];

#[derive(Debug, Default)]
struct Kept {
    entries: VecDeque<(usize, RecordedRequest)>,
    bytes: usize,
    dropped: u64,
}

#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    /// Bytes in the current file (rotated past the budget).
    size: u64,
}

/// Recorded calls, bounded in memory and on disk.
#[derive(Debug)]
pub(crate) struct RequestLog {
    budget: usize,
    kept: Mutex<Kept>,
    file: Option<Mutex<LogFile>>,
}

impl RequestLog {
    /// A log of at most `budget` bytes of JSON in memory and per file generation; `file` is
    /// `ROOT/.jobsim/requests.jsonl`, or `None` to keep calls in memory only.
    pub(crate) fn new(budget: usize, file: Option<PathBuf>) -> Self {
        let file = file.map(|path| {
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            Mutex::new(LogFile { path, size })
        });
        Self {
            budget: budget.max(1),
            kept: Mutex::new(Kept::default()),
            file,
        }
    }

    /// Records one call.
    pub(crate) fn record(&self, rec: RecordedRequest) {
        let Ok(line) = serde_json::to_string(&rec) else {
            return;
        };
        self.append_to_file(&line);
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        kept.bytes += line.len();
        kept.entries.push_back((line.len(), rec));
        while kept.bytes > self.budget && kept.entries.len() > 1 {
            if let Some((size, _)) = kept.entries.pop_front() {
                kept.bytes -= size;
                kept.dropped += 1;
            }
        }
    }

    fn append_to_file(&self, line: &str) {
        use std::io::Write as _;
        let Some(file) = &self.file else { return };
        // One write of one whole line, under a lock: concurrent calls never interleave.
        let Ok(mut file) = file.lock() else { return };
        let len = line.len() as u64 + 1;
        if file.size > 0 && file.size + len > self.budget as u64 {
            let old = file.path.with_extension("jsonl.1");
            if std::fs::rename(&file.path, &old).is_ok() {
                file.size = 0;
            }
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file.path)
            && f.write_all(format!("{line}\n").as_bytes()).is_ok()
        {
            file.size += len;
        }
    }

    /// The calls kept in memory, oldest first.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.kept
            .lock()
            .map(|k| k.entries.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }

    /// How many of the oldest calls were let go to stay within the budget.
    pub(crate) fn dropped(&self) -> u64 {
        self.kept.lock().map_or(0, |k| k.dropped)
    }
}

/// A request's parameters as the log keeps them: credentials removed at every depth, and a
/// body larger than [`RECORDED_BODY_MAX`] reduced to its top-level scalars (long strings cut)
/// plus `jobsim_omitted_bytes`, its serialized size.
pub(crate) fn recorded_body(params: &Map<String, Value>) -> Value {
    let size = json_len(params);
    if size <= RECORDED_BODY_MAX {
        return sanitize(params);
    }
    let mut summary: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| !SECRET_KEYS.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let kept = match v {
                Value::String(s) => Value::String(s.chars().take(SUMMARY_STRING_MAX).collect()),
                Value::Number(_) | Value::Bool(_) | Value::Null => v.clone(),
                Value::Array(_) | Value::Object(_) => return None,
            };
            Some((k.clone(), kept))
        })
        .collect();
    summary.insert("jobsim_omitted_bytes".into(), Value::from(size));
    Value::Object(summary)
}

fn sanitize(m: &Map<String, Value>) -> Value {
    fn clean(v: &Value) -> Value {
        match v {
            Value::Object(m) => sanitize(m),
            Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
            other => other.clone(),
        }
    }
    Value::Object(
        m.iter()
            .filter(|(k, _)| !SECRET_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), clean(v)))
            .collect(),
    )
}

/// Serialized length, counted without building the text.
fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(body: Value) -> RecordedRequest {
        RecordedRequest {
            time: String::new(),
            method: "POST".into(),
            path: "/p".into(),
            front: "esb".into(),
            api: "fast_push_file".into(),
            body,
            http_status: 200,
            code: Some(0),
            job_instance_id: None,
            fault: None,
        }
    }

    #[test]
    fn small_bodies_are_kept_whole_without_credentials() {
        let body =
            json!({"task_name": "t", "bk_app_secret": "s", "x": [{"bk_token": "t", "y": 1}]});
        let Value::Object(m) = body else {
            unreachable!()
        };
        assert_eq!(
            recorded_body(&m),
            json!({"task_name": "t", "x": [{"y": 1}]})
        );
    }

    #[test]
    fn large_bodies_keep_top_level_scalars_and_their_size() {
        let big = vec![0; RECORDED_BODY_MAX];
        let body =
            json!({"task_name": "t".repeat(1000), "bk_app_secret": "s", "n": 3, "ip_list": big});
        let Value::Object(m) = body else {
            unreachable!()
        };
        let kept = recorded_body(&m);
        assert_eq!(
            kept["task_name"].as_str().map(str::len),
            Some(SUMMARY_STRING_MAX)
        );
        assert_eq!(kept["n"], 3);
        assert!(kept.get("ip_list").is_none() && kept.get("bk_app_secret").is_none());
        assert!(kept["jobsim_omitted_bytes"].as_u64() > Some(RECORDED_BODY_MAX as u64));
    }

    #[test]
    fn memory_and_file_stay_within_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("requests.jsonl");
        let log = RequestLog::new(4096, Some(path.clone()));
        for i in 0..200 {
            log.record(rec(json!({ "i": i })));
        }
        let kept = log.requests();
        assert!(kept.len() < 200 && !kept.is_empty());
        assert_eq!(kept.len() as u64 + log.dropped(), 200);
        assert_eq!(kept.last().map(|r| r.body["i"].clone()), Some(json!(199)));
        let current = std::fs::metadata(&path).expect("file").len();
        let old = std::fs::metadata(path.with_extension("jsonl.1"))
            .expect("rotated")
            .len();
        assert!(current <= 4096 && old <= 4096, "{current} {old}");
    }
}

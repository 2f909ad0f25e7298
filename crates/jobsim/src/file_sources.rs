//! Third-party file sources (`file_type = 3`: bkrepo, COS, Artifactory behind JOB's file
//! gateway). The world's `[[file_source]]` entries have an `id`, a `code` and the business
//! they belong to; their files live under `ROOT/file_sources/<code>/`, a `file_list` entry
//! `bucket/path` being `ROOT/file_sources/<code>/bucket/path`.
//!
//! JOB resolves a `file_source_code` to its id inside a `try` whose `catch` rethrows
//! `1240002`, so an unknown code is an internal error; an id of another business is
//! `1260017`. At run time the file gateway pulls the files onto a file-worker host, which
//! then serves them to the targets as any source host does: the job's logs name that worker
//! ([`worker`]) as the source.

use std::path::PathBuf;

use plan_bkjob::code;

use crate::coerce::Params;
use crate::front::JobReply;
use crate::world::{HostRef, Scope, World};

/// How a source names its file source: `file_source_id` wins over `file_source_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileSourceRef {
    Id(i64),
    Code(String),
}

/// A file source a job reads from: its code and where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSource {
    pub(crate) code: String,
    pub(crate) root: PathBuf,
}

/// The source's reference, `None` when it names neither an id nor a code.
pub(crate) fn reference(src: &Params) -> Result<Option<FileSourceRef>, JobReply> {
    let bad = || JobReply::err(code::BAD_REQUEST, "Bad Request");
    let id = src.i64("file_source_id").map_err(|_| bad())?;
    let code = src.string("file_source_code").map_err(|_| bad())?;
    Ok(match (id, code) {
        (Some(id), _) => Some(FileSourceRef::Id(id)),
        (None, Some(code)) if !code.trim().is_empty() => Some(FileSourceRef::Code(code)),
        _ => None,
    })
}

/// The file source in the job's business, or JOB's refusal.
pub(crate) fn resolve(
    world: &World,
    scope: &Scope,
    reference: &FileSourceRef,
) -> Result<FileSource, JobReply> {
    let sources = &world.config().file_sources;
    let found = match reference {
        FileSourceRef::Code(code) => sources
            .iter()
            .find(|s| s.code == *code && s.business == scope.id)
            .ok_or_else(|| JobReply::err(code::INTERNAL_ERROR, "Internal Server Error"))?,
        FileSourceRef::Id(id) => sources
            .iter()
            .find(|s| i64::try_from(s.id) == Ok(*id) && s.business == scope.id)
            .ok_or_else(|| {
                JobReply::err(
                    code::FILE_SOURCE_ID_NOT_IN_BIZ,
                    format!("FileSource[id={id}] does not belong to specified business"),
                )
            })?,
    };
    Ok(FileSource {
        code: found.code.clone(),
        root: world.file_source_root(&found.code),
    })
}

/// The file-worker host the pulled files are served from (JOB's file gateway's worker).
pub(crate) fn worker() -> HostRef {
    HostRef {
        id: 0,
        cloud: 0,
        ip: "127.0.0.1".into(),
    }
}

/// A `file_list` entry of a file source as a path beneath its root: `bucket/path` is
/// `/bucket/path`.
pub(crate) fn entry_path(entry: &str) -> String {
    format!("/{}", entry.trim().trim_start_matches('/'))
}

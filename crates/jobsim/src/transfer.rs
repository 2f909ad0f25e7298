//! Moving bytes between sandbox hosts: expanding source entries on the source host
//! (§4.2) and copying them, throttled, into the target directory (§4.3). Every path is
//! resolved beneath a host's root through [`HostFs`], so nothing is read or written outside
//! a host (see `hostfs` for the rules on `..` and symlinks).

use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use crate::hostfs::{HostFs, detail, is_plain_name, last_name, relative};
use crate::paths::{SourceKind, parse_source, wildcard_match};

const CHUNK: usize = 64 * 1024;

/// One thing to deliver: a file or a whole directory found on a source host.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The path as JOB shows it on the source host (`/data/a.tgz`, `/data/dir/`).
    pub(crate) display: String,
    /// The source host it is on.
    pub(crate) host: HostFs,
    /// Where it is on that host, relative to the host root.
    pub(crate) rel: PathBuf,
    pub(crate) is_dir: bool,
    /// The name it gets in the target directory (always one plain name).
    pub(crate) dest_name: String,
    pub(crate) size: u64,
}

/// Expands one source entry on a source host. `Err` carries a detail message: a missing
/// file, a pattern that matches nothing, a file/directory mismatch, or a path that leads
/// outside the host (all GSE pull failures, host status 320).
pub(crate) fn expand(
    host: &HostFs,
    entry: &str,
    rename: Option<&str>,
) -> Result<Vec<Item>, String> {
    let spec = parse_source(entry);
    let rel = relative(entry);
    let item = |rel: PathBuf, is_dir: bool, dest_name: String, size: u64| Item {
        display: entry.to_string(),
        host: host.clone(),
        rel,
        is_dir,
        dest_name,
        size,
    };
    match &spec.kind {
        SourceKind::File => {
            // The name the host resolves (`/a/b/..` is `/a`), or the v3 rename.
            let name = rename
                .map(str::to_string)
                .or_else(|| last_name(&rel))
                .filter(|n| is_plain_name(n));
            match host.dir().metadata(&rel) {
                Ok(m) if m.is_file() => match name {
                    Some(name) => Ok(vec![item(rel, false, name, m.len())]),
                    None => Err(format!("{entry} is not a regular file")),
                },
                Ok(_) => Err(format!("{entry} is not a regular file")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(format!("Source file {entry} does not exist"))
                }
                Err(e) => Err(format!("Source file {entry}: {}", detail(&e))),
            }
        }
        SourceKind::Dir => {
            // `/stage/x/../` is the directory `/stage/`, named `stage`: the name is taken
            // after `..` is resolved, so it can never climb out of the target directory.
            let Some(name) = last_name(&rel) else {
                return Err(format!("Source directory {entry} has no name"));
            };
            match host.dir().metadata(&rel) {
                Ok(m) if m.is_dir() => {
                    let size = dir_size(host.dir(), &rel);
                    Ok(vec![item(rel, true, name, size)])
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    Err(format!("Source directory {entry}: {}", detail(&e)))
                }
                _ => Err(format!("Source directory {entry} does not exist")),
            }
        }
        SourceKind::Regex(re) | SourceKind::Wildcard(re) => {
            let matcher: Box<dyn Fn(&str) -> bool> = match &spec.kind {
                SourceKind::Regex(_) => match regex::Regex::new(re) {
                    Ok(r) => Box::new(move |n: &str| r.is_match(n)),
                    Err(_) => return Err(format!("Invalid regular expression {re}")),
                },
                _ => {
                    let pat = re.clone();
                    Box::new(move |n: &str| wildcard_match(&pat, n))
                }
            };
            let dir_rel = relative(&spec.dir);
            let mut items = Vec::new();
            if let Ok(rd) = host.dir().read_dir(&dir_rel) {
                for e in rd.flatten() {
                    // Regular files only: a symlink in the directory is never matched.
                    if !e.file_type().is_ok_and(|t| t.is_file()) {
                        continue;
                    }
                    let Some(name) = e.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    let Ok(m) = e.metadata() else { continue };
                    if matcher(&name) {
                        items.push(Item {
                            display: format!("{}{name}", spec.dir),
                            host: host.clone(),
                            rel: dir_rel.join(&name),
                            is_dir: false,
                            dest_name: name,
                            size: m.len(),
                        });
                    }
                }
            }
            items.sort_by(|a, b| a.dest_name.cmp(&b.dest_name));
            if items.is_empty() {
                Err(format!("No source file matches {entry}"))
            } else {
                Ok(items)
            }
        }
    }
}

/// Bytes of the regular files under a directory (symlinks not followed).
fn dir_size(host: &Dir, rel: &Path) -> u64 {
    let Ok(top) = host.open_dir(rel) else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![top];
    while let Some(d) = stack.pop() {
        let Ok(rd) = d.entries() else { continue };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => {
                    if let Ok(sub) = e.open_dir() {
                        stack.push(sub);
                    }
                }
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

/// Paces one host's downloads at `bytes_per_sec` on tokio's clock.
#[derive(Debug)]
pub(crate) struct Throttle {
    bytes_per_sec: Option<f64>,
    start: Instant,
    done: u64,
}

impl Throttle {
    pub(crate) fn new(mb_per_sec: Option<u64>) -> Self {
        Self {
            bytes_per_sec: mb_per_sec.map(|m| m as f64 * 1024.0 * 1024.0),
            start: Instant::now(),
            done: 0,
        }
    }

    async fn consumed(&mut self, n: u64) {
        self.done += n;
        if let Some(bps) = self.bytes_per_sec {
            let due = std::time::Duration::from_secs_f64(self.done as f64 / bps);
            tokio::time::sleep_until(self.start + due).await;
        }
    }

    /// Waits until `extra` bytes beyond those consumed so far are due.
    async fn until(&self, extra: u64) {
        if let Some(bps) = self.bytes_per_sec {
            let due =
                std::time::Duration::from_secs_f64(self.done.saturating_add(extra) as f64 / bps);
            tokio::time::sleep_until(self.start + due).await;
        }
    }

    /// Bytes per second actually achieved, for the log.
    pub(crate) fn kb_per_sec(&self) -> u64 {
        if let Some(bps) = self.bytes_per_sec {
            return (bps / 1024.0) as u64;
        }
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        (self.done as f64 / 1024.0 / secs) as u64
    }
}

/// Copies one file from `src`/`src_rel` to `dest`/`dest_rel` through a temporary name, so
/// readers never see half a file and the last writer of a name wins. The temporary file is
/// created exclusively and renamed over the destination, so a symlink planted there is
/// replaced, never written through. `progress` is called with the percentage done and the
/// speed so far in KB/s (GSE reports both on every progress line).
pub(crate) async fn copy_file(
    src: &Dir,
    src_rel: &Path,
    dest: &Dir,
    dest_rel: &Path,
    throttle: &mut Throttle,
    mut progress: impl FnMut(u8, u64),
) -> std::io::Result<()> {
    let input = src.open(src_rel)?;
    let meta = input.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            src_rel.display()
        )));
    }
    let total = meta.len();
    let mut input = tokio::fs::File::from_std(input.into_std());
    let parent = dest_rel
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.jobsim-{:016x}.part",
        dest_rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file"),
        rand::random::<u64>()
    ));
    let result = async {
        let out = dest.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
        let mut out = tokio::fs::File::from_std(out.into_std());
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        let mut last = 0u8;
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).await?;
            let before = done;
            done += n as u64;
            if throttle.bytes_per_sec.is_some() {
                // Paced: each whole percent is reported when the paced transfer passes it
                // (JOB writes a line per change of the percentage, §6.6/§7.6), not once per
                // chunk read, which at 1 MB/s would be a 60 ms step.
                loop {
                    let next = last + 1;
                    if next >= 100 {
                        break;
                    }
                    let at = total.saturating_mul(u64::from(next)).div_ceil(100);
                    if at > done {
                        break;
                    }
                    throttle.until(at.saturating_sub(before)).await;
                    progress(next, throttle.kb_per_sec());
                    last = next;
                }
                throttle.consumed(n as u64).await;
            } else {
                throttle.consumed(n as u64).await;
                let pct = done
                    .saturating_mul(100)
                    .checked_div(total)
                    .map_or(100, |p| p.min(100) as u8);
                if pct > last && pct < 100 {
                    progress(pct, throttle.kb_per_sec());
                }
                last = pct;
            }
        }
        out.flush().await?;
        drop(out);
        if dest.metadata(dest_rel).is_ok_and(|m| m.is_dir()) {
            return Err(std::io::Error::other(format!(
                "{} is a directory",
                dest_rel.display()
            )));
        }
        dest.rename(&tmp, dest, dest_rel)
    }
    .await;
    if result.is_err() {
        let _ = dest.remove_file(&tmp);
    }
    result
}

/// Copies the directory `src`/`src_rel` to `dest`/`dest_rel` (which becomes the directory
/// itself). The tree is listed before anything is written, so a target inside the source
/// cannot recurse; symlinks in it are not copied.
pub(crate) async fn copy_dir(
    src: &Dir,
    src_rel: &Path,
    dest: &Dir,
    dest_rel: &Path,
    throttle: &mut Throttle,
) -> std::io::Result<()> {
    let tree = src.open_dir(src_rel)?;
    let listed = tree.try_clone()?;
    let (dirs, files) = tokio::task::spawn_blocking(move || list_tree(&listed))
        .await
        .map_err(std::io::Error::other)??;
    dest.create_dir_all(dest_rel)?;
    let out = dest.open_dir(dest_rel)?;
    for rel in dirs {
        out.create_dir_all(rel)?;
    }
    for rel in files {
        copy_file(&tree, &rel, &out, &rel, throttle, |_, _| {}).await?;
    }
    Ok(())
}

/// Relative paths of every directory and regular file under `root` (symlinks skipped).
fn list_tree(root: &Dir) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::from(".")];
    while let Some(rel) = stack.pop() {
        for e in root.read_dir(&rel)? {
            let e = e?;
            let ft = e.file_type()?;
            let child = rel.join(e.file_name());
            if ft.is_dir() {
                dirs.push(child.clone());
                stack.push(child);
            } else if ft.is_file() {
                files.push(child);
            }
        }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}

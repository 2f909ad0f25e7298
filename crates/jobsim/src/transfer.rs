//! Moving bytes between sandbox hosts: expanding source entries on the source host
//! (§4.2) and copying them, throttled, into the target directory (§4.3).

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use crate::paths::{SourceKind, parse_source, wildcard_match};

const CHUNK: usize = 64 * 1024;

/// One thing to deliver: a file or a whole directory found on a source host.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The path as JOB shows it on the source host (`/data/a.tgz`, `/data/dir/`).
    pub(crate) display: String,
    /// Where it is in the sandbox.
    pub(crate) abs: PathBuf,
    pub(crate) is_dir: bool,
    /// The name it gets in the target directory.
    pub(crate) dest_name: String,
    pub(crate) size: u64,
}

/// Expands one source entry on a source host. `Err` carries a detail message: a missing
/// file, a pattern that matches nothing, or a file/directory mismatch (all GSE pull
/// failures, host status 320).
pub(crate) fn expand(
    host_root: &Path,
    entry: &str,
    rename: Option<&str>,
) -> Result<Vec<Item>, String> {
    let spec = parse_source(entry);
    let dir_abs = crate::paths::host_path(host_root, &spec.dir);
    match &spec.kind {
        SourceKind::File => {
            let abs = crate::paths::host_path(host_root, entry);
            match std::fs::metadata(&abs) {
                Ok(m) if m.is_file() => Ok(vec![Item {
                    display: entry.to_string(),
                    abs,
                    is_dir: false,
                    dest_name: rename.map_or_else(|| spec.name.clone(), str::to_string),
                    size: m.len(),
                }]),
                Ok(_) => Err(format!("{entry} is not a regular file")),
                Err(_) => Err(format!("Source file {entry} does not exist")),
            }
        }
        SourceKind::Dir => {
            let abs = crate::paths::host_path(host_root, entry);
            if !abs.is_dir() {
                return Err(format!("Source directory {entry} does not exist"));
            }
            let size = dir_size(&abs);
            Ok(vec![Item {
                display: entry.to_string(),
                abs,
                is_dir: true,
                dest_name: spec.name.clone(),
                size,
            }])
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
            let mut items = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&dir_abs) {
                for e in rd.flatten() {
                    let Ok(m) = e.metadata() else { continue };
                    let Some(name) = e.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    if m.is_file() && matcher(&name) {
                        items.push(Item {
                            display: format!("{}{name}", spec.dir),
                            abs: e.path(),
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

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => stack.push(e.path()),
                    Ok(m) => total += m.len(),
                    Err(_) => {}
                }
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

/// Copies one file through a temporary name, so readers never see half a file and the
/// last writer of a name wins. `progress` is called with the percentage done and the
/// speed so far in KB/s (GSE reports both on every progress line).
pub(crate) async fn copy_file(
    src: &Path,
    dest: &Path,
    throttle: &mut Throttle,
    mut progress: impl FnMut(u8, u64),
) -> std::io::Result<()> {
    let mut input = tokio::fs::File::open(src).await?;
    let total = input.metadata().await?.len();
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.jobsim-{:016x}.part",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        rand::random::<u64>()
    ));
    let result = async {
        let mut out = tokio::fs::File::create(&tmp).await?;
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
        if tokio::fs::metadata(dest).await.is_ok_and(|m| m.is_dir()) {
            return Err(std::io::Error::other(format!(
                "{} is a directory",
                dest.display()
            )));
        }
        tokio::fs::rename(&tmp, dest).await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// Copies a directory tree into `dest` (which becomes the directory itself). The tree is
/// listed before anything is written, so a target inside the source cannot recurse.
pub(crate) async fn copy_dir(
    src: &Path,
    dest: &Path,
    throttle: &mut Throttle,
) -> std::io::Result<()> {
    let root = src.to_path_buf();
    let (dirs, files) = tokio::task::spawn_blocking(move || list_tree(&root))
        .await
        .map_err(std::io::Error::other)??;
    tokio::fs::create_dir_all(dest).await?;
    for rel in dirs {
        tokio::fs::create_dir_all(dest.join(rel)).await?;
    }
    for rel in files {
        copy_file(&src.join(&rel), &dest.join(&rel), throttle, |_, _| {}).await?;
    }
    Ok(())
}

/// Relative paths of every directory and regular file under `root` (symlinks skipped).
fn list_tree(root: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel))? {
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

/// JOB's display form of a size.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["Bytes", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// `1,234 KB/s`.
pub(crate) fn human_speed(kb: u64) -> String {
    let s = kb.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} KB/s")
}

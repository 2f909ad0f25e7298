//! What JOB's file logs say about a running transfer: per file its size, speed and progress
//! (§6.6, §7.5, §7.6 of the API reference), turned into the time the transfers still need.
//!
//! JOB writes a progress line each time a file's percentage changes
//! ([`plan_bkjob::file_log`] reads it):
//! `[time] FileName: /p FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 45%`.
//! The polling policy ([`crate::options::PollPolicy`]) sleeps until the estimated end instead of
//! probing blindly; nothing here decides whether a job succeeded.

use std::time::Duration;

use plan_bkjob::file_log::FileProgress;

/// The time a running job's transfers still need, read from JOB's file logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Until the last listed file of the slowest host has arrived (zero: every file the logs
    /// list has arrived, and JOB is closing the job).
    pub remaining: Duration,
    /// False when some unfinished file could not be sized (not started, no speed yet): the
    /// end may then come later than `remaining`.
    pub complete: bool,
    /// What one host receives per second, as JOB's logs last said: the speeds of a host's
    /// files moving side by side added up, averaged over the hosts read (`None` when no
    /// file is moving). Shown to people; the estimate does not use it.
    pub bytes_per_second: Option<u64>,
}

/// One host's estimate: active files run side by side (the slowest decides), waiting ones
/// follow at the host's speed. `None` when no open file could be sized at all.
fn host_remaining(files: &[FileProgress]) -> (Option<f64>, bool) {
    let host_speed = files
        .iter()
        .filter_map(|f| f.speed)
        .filter(|s| *s > 0.0)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    let mut active: Option<f64> = None;
    let mut queued = 0.0;
    let mut known = false;
    let mut complete = true;
    for f in files.iter().filter(|f| f.open) {
        let speed = f.speed.filter(|s| *s > 0.0).or(host_speed);
        match (f.size, speed) {
            (Some(size), Some(speed)) => {
                let left = size * (100.0 - f.percent.unwrap_or(0.0).clamp(0.0, 100.0)) / 100.0;
                let secs = left / speed;
                known = true;
                if f.active {
                    active = Some(active.map_or(secs, |a: f64| a.max(secs)));
                } else {
                    queued += secs;
                }
            }
            _ => complete = false,
        }
    }
    let open = files.iter().any(|f| f.open);
    if !open {
        return (Some(0.0), true);
    }
    if !known {
        return (None, false);
    }
    (Some(active.unwrap_or(0.0) + queued), complete)
}

/// The job's estimate from its hosts' files: the slowest host decides.
pub(crate) fn estimate<'a>(
    hosts: impl IntoIterator<Item = &'a [FileProgress]>,
) -> Option<Estimate> {
    let mut worst: Option<f64> = None;
    let mut complete = true;
    let hosts_read: Vec<&[FileProgress]> = hosts.into_iter().collect();
    let any = !hosts_read.is_empty();
    for &files in &hosts_read {
        let (secs, host_complete) = host_remaining(files);
        complete &= host_complete;
        if let Some(s) = secs {
            worst = Some(worst.map_or(s, |w| w.max(s)));
        }
    }
    if !any {
        return None;
    }
    let secs = worst?;
    // A nonsensical figure (a speed of 1 byte/s, a size in petabytes) gives no estimate
    // rather than a sleep of years; the caller caps every sleep anyway.
    if !secs.is_finite() || secs > 1e7 {
        return None;
    }
    Some(Estimate {
        remaining: Duration::from_secs_f64(secs.max(0.0)),
        complete,
        bytes_per_second: throughput(&hosts_read),
    })
}

/// The per-host throughput of [`Estimate::bytes_per_second`].
fn throughput(hosts: &[&[FileProgress]]) -> Option<u64> {
    let per_host: Vec<f64> = hosts
        .iter()
        .map(|files| {
            files
                .iter()
                .filter(|f| f.open && f.active)
                .filter_map(|f| f.speed)
                .filter(|s| s.is_finite() && *s > 0.0)
                .sum::<f64>()
        })
        .filter(|speed| *speed > 0.0)
        .collect();
    let mean = per_host.iter().sum::<f64>() / per_host.len().max(1) as f64;
    // Whole bytes: a fraction is noise.
    (!per_host.is_empty()).then(|| mean.round() as u64)
}

#[cfg(test)]
mod tests {
    use plan_bkjob::FileStatus;

    use super::*;

    #[test]
    fn the_last_line_of_each_file_decides() {
        let log = "[2026-01-01 12:00:00] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Progress: 0%\n\
                   [2026-01-01 12:00:01] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 25%\n\
                   [2026-01-01 12:00:01] FileName: /opt/b.bin FileSize: 1.0 MB Status: 4 StatusDesc: success Speed: 1,024 KB/s Progress: 100% Detail: success\n";
        let files = FileProgress::from_log(log);
        assert_eq!(files.len(), 2);
        assert!(files[0].open && files[0].active);
        assert_eq!(files[0].percent, Some(25.0));
        assert!(!files[1].open);
        let e = estimate([files.as_slice()]).expect("estimate");
        assert_eq!(e.remaining, Duration::from_secs(3));
        assert!(e.complete);
        // Only the file still moving counts towards the throughput.
        assert_eq!(e.bytes_per_second, Some(1024 * 1024));
    }

    #[test]
    fn throughput_is_per_host_files_moving_side_by_side_added_up() {
        let line = |name: &str, speed: &str| {
            format!(
                "[2026-01-01 12:00:01] FileName: {name} FileSize: 8.0 MB Status: 3 StatusDesc: downloading Speed: {speed} Progress: 10%\n"
            )
        };
        let two_files =
            FileProgress::from_log(&(line("/a", "1,024 KB/s") + &line("/b", "1,024 KB/s")));
        let one_file = FileProgress::from_log(&line("/a", "2,048 KB/s"));
        let waiting = FileProgress::from_log(
            "[2026-01-01 12:00:00] FileName: /a FileSize: 8.0 MB Status: 1 StatusDesc: waiting Progress: 0%\n",
        );
        let e = estimate([
            two_files.as_slice(),
            one_file.as_slice(),
            waiting.as_slice(),
        ]);
        let bytes = e.and_then(|e| e.bytes_per_second);
        assert_eq!(bytes, Some(2 * 1024 * 1024));
        let idle = estimate([waiting.as_slice()]).and_then(|e| e.bytes_per_second);
        assert_eq!(idle, None);
    }

    #[test]
    fn a_failed_file_is_closed_and_a_file_name_with_markers_parses() {
        let log = "[2026-01-01 12:00:00] FileName: /opt/x Status: y.bin FileSize: 2.0 MB Status: 5 StatusDesc: failed Speed: 1,024 KB/s Progress: 0% Detail: Transfer failed\n";
        let files = FileProgress::from_log(log);
        assert_eq!(files.len(), 1);
        assert!(!files[0].open);
        assert_eq!(
            estimate([files.as_slice()]).map(|e| e.remaining),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn the_slowest_host_decides_and_unsized_files_make_it_incomplete() {
        let fast = [FileProgress::from_v3_entry(
            Some(FileStatus::Downloading),
            Some("1.0 MB"),
            Some("1,024 KB/s"),
            Some("50%"),
            None,
        )];
        let slow = [
            FileProgress::from_v3_entry(
                Some(FileStatus::Downloading),
                Some("2.0 MB"),
                Some("1,024 KB/s"),
                Some("50%"),
                None,
            ),
            // Queued behind it at the host's speed.
            FileProgress::from_v3_entry(
                Some(FileStatus::Waiting),
                Some("1.0 MB"),
                Some("--"),
                Some("--"),
                None,
            ),
        ];
        let e = estimate([fast.as_slice(), slow.as_slice()]).expect("estimate");
        assert_eq!(e.remaining, Duration::from_secs(2));
        assert!(e.complete);
        let waiting = [FileProgress::from_v3_entry(
            Some(FileStatus::Waiting),
            Some("--"),
            Some("--"),
            Some("--"),
            None,
        )];
        let e = estimate([fast.as_slice(), waiting.as_slice()]).expect("estimate");
        assert_eq!(e.remaining, Duration::from_millis(500));
        assert!(!e.complete);
        assert_eq!(estimate([waiting.as_slice()]), None);
        assert_eq!(estimate(std::iter::empty::<&[FileProgress]>()), None);
    }
}

//! JOB's file-log lines (§7.6 of the API reference): the one place that writes them (the
//! simulator) and reads them (the planner's progress estimate).
//!
//! JOB appends a line to a file's log each time GSE reports a change for it:
//!
//! ```text
//! [2026-01-01 12:00:01] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 25%
//! ```
//!
//! Each part after the name is left out when empty; a path ending in `/` or `\` is written
//! `Directory:` instead of `FileName:`. Sizes and speeds are display strings in binary units
//! ([`display_size`], [`display_speed`]), read back by [`parse_size`] and [`parse_speed`].

use std::collections::BTreeMap;
use std::fmt;

use crate::status::FileStatus;

/// The `chrono` / `strftime` format of a line's timestamp (`yyyy-MM-dd HH:mm:ss`, local time).
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The markers that open each part, in the order JOB writes them.
const MARKERS: [&str; 8] = [
    "FileName: ",
    "Directory: ",
    " FileSize: ",
    " Status: ",
    " StatusDesc: ",
    " Speed: ",
    " Progress: ",
    " Detail: ",
];

/// The parts of one file-log line. Writing omits a part that is `None` or empty; parsing
/// gives `None` for a part JOB left out (values are trimmed, empty ones are `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileLogLine<'a> {
    /// The `[...]` timestamp, without the brackets (parsing only; writing takes it apart).
    pub time: Option<&'a str>,
    /// The path after `FileName:` or `Directory:` (the destination path of a download, the
    /// source's display path of an upload).
    pub name: Option<&'a str>,
    /// Display size, e.g. `4.0 MB`.
    pub size: Option<&'a str>,
    /// The file's status.
    pub status: Option<FileStatus>,
    /// GSE's text for the status.
    pub status_desc: Option<&'a str>,
    /// Display speed, e.g. `1,024 KB/s`.
    pub speed: Option<&'a str>,
    /// Display progress, e.g. `45%`.
    pub progress: Option<&'a str>,
    /// GSE's message (`success`, or why the file failed); JOB writes it when the file ends.
    pub detail: Option<&'a str>,
}

impl<'a> FileLogLine<'a> {
    /// A line for `name` in `status`, with the status's label as its `StatusDesc`.
    pub fn new(name: &'a str, status: FileStatus) -> Self {
        FileLogLine {
            name: Some(name),
            status: Some(status),
            status_desc: Some(status.label()),
            ..FileLogLine::default()
        }
    }

    /// With a display size ([`display_size`]).
    #[must_use]
    pub fn size(mut self, size: &'a str) -> Self {
        self.size = Some(size);
        self
    }

    /// With a display speed ([`display_speed`]).
    #[must_use]
    pub fn speed(mut self, speed: &'a str) -> Self {
        self.speed = Some(speed);
        self
    }

    /// With a display progress ([`display_progress`]).
    #[must_use]
    pub fn progress(mut self, progress: &'a str) -> Self {
        self.progress = Some(progress);
        self
    }

    /// With a detail message.
    #[must_use]
    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The whole line as JOB renders it: `[time] <parts>\n` (`time` in [`TIME_FORMAT`]).
    pub fn stamped(&self, time: &str) -> String {
        format!("[{time}] {self}\n")
    }

    /// Reads one line (with or without its `[time] ` stamp and line end).
    ///
    /// Parts are searched in JOB's order, each after the previous one, so a name holding a
    /// later marker (`/opt/x Status: y.bin`) cannot shift the parts that follow it.
    pub fn parse(line: &'a str) -> Self {
        let line = line.trim_end_matches(['\n', '\r']);
        let (time, raw) = match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
            Some((time, rest)) => (Some(time), rest),
            None => (None, line),
        };
        let found = find_markers(raw);
        let mut out = FileLogLine {
            time,
            ..FileLogLine::default()
        };
        for (k, &(marker, _, start)) in found.iter().enumerate() {
            let end = found.get(k + 1).map_or(raw.len(), |next| next.1);
            let value = raw.get(start..end).map(str::trim).filter(|v| !v.is_empty());
            match marker {
                0 | 1 => out.name = value,
                2 => out.size = value,
                3 => {
                    out.status = value
                        .and_then(|v| v.parse().ok())
                        .map(FileStatus::from_code)
                }
                4 => out.status_desc = value,
                5 => out.speed = value,
                6 => out.progress = value,
                _ => out.detail = value,
            }
        }
        out
    }
}

/// A line without its `[yyyy-MM-dd HH:mm:ss] ` stamp (the line itself when it has none).
pub fn without_time(line: &str) -> &str {
    let bytes = line.as_bytes();
    let stamped = bytes.len() > 22
        && bytes[0] == b'['
        && bytes[20] == b']'
        && bytes[1..5].iter().all(u8::is_ascii_digit);
    if stamped {
        line[21..].trim_start()
    } else {
        line
    }
}

/// `(marker index, start of the marker, start of its value)` of each marker found in `raw`.
fn find_markers(raw: &str) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    for (i, marker) in MARKERS.iter().enumerate() {
        if let Some(pos) = raw.get(from..).and_then(|r| r.find(marker)) {
            let at = from + pos;
            found.push((i, at, at + marker.len()));
            from = at + marker.len();
        }
    }
    found
}

impl fmt::Display for FileLogLine<'_> {
    /// The line's parts without the timestamp or line end.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lead = "";
        if let Some(name) = present(self.name) {
            let label = if name.ends_with('/') || name.ends_with('\\') {
                "Directory"
            } else {
                "FileName"
            };
            write!(f, "{label}: {name}")?;
            lead = " ";
        }
        let status = self.status.map(|s| s.code().to_string());
        let parts = [
            ("FileSize", present(self.size)),
            ("Status", status.as_deref()),
            ("StatusDesc", present(self.status_desc)),
            ("Speed", present(self.speed)),
            ("Progress", present(self.progress)),
            ("Detail", present(self.detail)),
        ];
        for (label, value) in parts {
            if let Some(value) = value {
                write!(f, "{lead}{label}: {value}")?;
                lead = " ";
            }
        }
        Ok(())
    }
}

/// A part worth writing: present and not empty.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// JOB's display form of a size: one decimal in the largest binary unit that keeps the
/// number at least 1 (`9.0 Bytes`, `4.0 MB`, `1.2 GB`).
pub fn display_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["Bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// JOB's display form of a speed in KB/s, with thousands separators: `1,234 KB/s`.
pub fn display_speed(kb_per_second: u64) -> String {
    let digits = kb_per_second.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 5);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(" KB/s");
    out
}

/// JOB's display form of a progress: `45%`.
pub fn display_progress(percent: u8) -> String {
    format!("{percent}%")
}

/// `"4.0 MB"`, `"9.0 Bytes"`, `"1.2 GB"` (binary units, as JOB displays them) to bytes;
/// `None` for JOB's `--` placeholder or anything else it does not write.
pub fn parse_size(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(text.len());
    let number: f64 = text[..split].replace(',', "").parse().ok()?;
    let unit = text[split..].trim().to_ascii_uppercase();
    let scale = match unit.as_str() {
        "" | "B" | "BYTE" | "BYTES" => 1.0,
        "KB" | "K" | "KIB" => 1024.0,
        "MB" | "M" | "MIB" => 1024.0 * 1024.0,
        "GB" | "G" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "TB" | "T" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * scale)
}

/// `"1,024 KB/s"` (or `"12 MB/s"`) to bytes per second; `None` for `--` and for 0.
pub fn parse_speed(text: &str) -> Option<f64> {
    let text = text.trim();
    let per_second = text
        .strip_suffix("/s")
        .or_else(|| text.strip_suffix("/S"))?;
    parse_size(per_second).filter(|s| *s > 0.0)
}

/// `"45%"` to 45; `None` for `--` and for figures outside 0..=100.
pub fn parse_percent(text: &str) -> Option<f64> {
    text.trim()
        .strip_suffix('%')?
        .trim()
        .parse()
        .ok()
        .filter(|p: &f64| (0.0..=100.0).contains(p))
}

/// What JOB's logs say about one file of a running transfer: the figures of its last line
/// (or of its v3 entry), and whether it still has bytes to move.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileProgress {
    /// Bytes, from the display size.
    pub size: Option<f64>,
    /// Bytes per second, from the display speed.
    pub speed: Option<f64>,
    /// 0..=100.
    pub percent: Option<f64>,
    /// Still to transfer (waiting, uploading or downloading).
    pub open: bool,
    /// Bytes are moving (a speed or a percentage above 0 was reported).
    pub active: bool,
}

impl FileProgress {
    /// The files of one host's log text (v2 `log_content`, or one v3 entry's
    /// `log_content`), in the order they first appear: the last line of each file decides.
    pub fn from_log(content: &str) -> Vec<FileProgress> {
        let mut by_name: BTreeMap<&str, FileProgress> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for line in content.lines() {
            let parsed = FileLogLine::parse(line);
            let Some(name) = parsed.name else { continue };
            let entry = by_name.entry(name).or_insert_with(|| {
                order.push(name);
                FileProgress::default()
            });
            entry.apply(&parsed);
        }
        order
            .into_iter()
            .filter_map(|n| by_name.remove(n))
            .collect()
    }

    /// A v3 file-log entry: `status` says open or not; the figures come from the display
    /// strings when JOB filled them (batch API), else from the last line of its log.
    pub fn from_v3_entry(
        status: Option<FileStatus>,
        size: Option<&str>,
        speed: Option<&str>,
        process: Option<&str>,
        log: Option<&str>,
    ) -> FileProgress {
        let mut file = log
            .map(FileProgress::from_log)
            .and_then(|mut f| f.pop())
            .unwrap_or_default();
        if let Some(s) = size.and_then(parse_size) {
            file.size = Some(s);
        }
        if let Some(s) = speed.and_then(parse_speed) {
            file.speed = Some(s);
        }
        if let Some(p) = process.and_then(parse_percent) {
            file.percent = Some(p);
        }
        if let Some(status) = status {
            file.open = status.is_open();
            file.active = status.is_transferring();
        }
        file
    }

    fn apply(&mut self, line: &FileLogLine<'_>) {
        if let Some(size) = line.size.and_then(parse_size) {
            self.size = Some(size);
        }
        let speed = line.speed.and_then(parse_speed);
        if speed.is_some() {
            self.speed = speed;
        }
        let percent = line.progress.and_then(parse_percent);
        if percent.is_some() {
            self.percent = percent;
        }
        // A line with a detail closes the file (success or the reason it failed); 100% is done.
        let closed = line.detail.is_some() || percent.is_some_and(|p| p >= 100.0);
        self.open = !closed;
        self.active = !closed && (speed.is_some() || percent.is_some_and(|p| p > 0.0));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MB: f64 = 1024.0 * 1024.0;
    const STAMP: &str = "2026-01-01 12:00:01";

    #[test]
    fn a_progress_line_is_written_as_job_does() {
        let size = display_size(4 * 1024 * 1024);
        let speed = display_speed(1024);
        let progress = display_progress(25);
        let line = FileLogLine::new("/opt/a.bin", FileStatus::Downloading)
            .size(&size)
            .speed(&speed)
            .progress(&progress);
        assert_eq!(
            line.stamped(STAMP),
            "[2026-01-01 12:00:01] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 25%\n"
        );
        let dir = FileLogLine::new("/opt/conf/", FileStatus::Failed).detail("Agent is abnormal");
        assert_eq!(
            dir.to_string(),
            "Directory: /opt/conf/ Status: 5 StatusDesc: failed Detail: Agent is abnormal"
        );
        let empty_parts = FileLogLine::new("/a", FileStatus::Waiting)
            .size("")
            .detail("");
        assert_eq!(
            empty_parts.to_string(),
            "FileName: /a Status: 1 StatusDesc: waiting"
        );
    }

    #[test]
    fn a_line_reads_back_part_by_part() {
        let line = FileLogLine::parse(
            "[2026-01-01 12:00:01] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 25%\n",
        );
        assert_eq!(
            line,
            FileLogLine {
                time: Some(STAMP),
                name: Some("/opt/a.bin"),
                size: Some("4.0 MB"),
                status: Some(FileStatus::Downloading),
                status_desc: Some("downloading"),
                speed: Some("1,024 KB/s"),
                progress: Some("25%"),
                detail: None,
            }
        );
        assert_eq!(
            FileLogLine::parse("no markers at all"),
            FileLogLine::default()
        );
    }

    #[test]
    fn a_name_holding_a_later_marker_does_not_shift_the_parts() {
        let line = FileLogLine::parse(
            "[2026-01-01 12:00:00] FileName: /opt/x Status: y.bin FileSize: 2.0 MB Status: 5 StatusDesc: failed Progress: 0% Detail: Transfer failed",
        );
        assert_eq!(line.name, Some("/opt/x Status: y.bin"));
        assert_eq!(line.size, Some("2.0 MB"));
        assert_eq!(line.status, Some(FileStatus::Failed));
        assert_eq!(line.detail, Some("Transfer failed"));
    }

    #[test]
    fn the_stamp_comes_off_and_nothing_else() {
        assert_eq!(
            without_time("[2026-11-28 17:45:24] FileName: /a Status: 5"),
            "FileName: /a Status: 5"
        );
        assert_eq!(without_time("plain"), "plain");
        assert_eq!(
            without_time("[not a time at all] x"),
            "[not a time at all] x"
        );
    }

    #[test]
    fn display_figures_parse() {
        assert_eq!(parse_size("4.0 MB"), Some(4.0 * MB));
        assert_eq!(parse_size("9.0 Bytes"), Some(9.0));
        assert_eq!(parse_size("512.0 KB"), Some(512.0 * 1024.0));
        assert_eq!(parse_size("--"), None);
        assert_eq!(parse_speed("1,024 KB/s"), Some(MB));
        assert_eq!(parse_speed("0 KB/s"), None);
        assert_eq!(parse_speed("--"), None);
        assert_eq!(parse_percent("45%"), Some(45.0));
        assert_eq!(parse_percent("--"), None);
        assert_eq!(parse_percent("250%"), None);
        assert_eq!(display_size(0), "0.0 Bytes");
        assert_eq!(display_size(1536), "1.5 KB");
        assert_eq!(display_speed(1_234_567), "1,234,567 KB/s");
        assert_eq!(display_speed(999), "999 KB/s");
    }

    #[test]
    fn the_last_line_of_each_file_decides() {
        let log = "[2026-01-01 12:00:00] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Progress: 0%\n\
                   [2026-01-01 12:00:01] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 25%\n\
                   [2026-01-01 12:00:01] FileName: /opt/b.bin FileSize: 1.0 MB Status: 4 StatusDesc: success Speed: 1,024 KB/s Progress: 100% Detail: success\n";
        let files = FileProgress::from_log(log);
        assert_eq!(files.len(), 2);
        assert!(files[0].open && files[0].active);
        assert_eq!(files[0].percent, Some(25.0));
        assert_eq!(files[0].size, Some(4.0 * MB));
        assert_eq!(files[0].speed, Some(MB));
        assert!(!files[1].open && !files[1].active);
    }

    #[test]
    fn a_v3_entry_takes_its_display_figures_over_its_log() {
        let log = "[2026-01-01 12:00:01] FileName: /opt/a.bin FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: 25%\n";
        let file = FileProgress::from_v3_entry(
            Some(FileStatus::Downloading),
            Some("8.0 MB"),
            Some("--"),
            Some("50%"),
            Some(log),
        );
        assert_eq!(file.size, Some(8.0 * MB));
        assert_eq!(file.speed, Some(MB));
        assert_eq!(file.percent, Some(50.0));
        assert!(file.open && file.active);
        let waiting =
            FileProgress::from_v3_entry(Some(FileStatus::Waiting), None, None, None, None);
        assert!(waiting.open && !waiting.active);
        let done =
            FileProgress::from_v3_entry(Some(FileStatus::Finished), None, None, None, Some(log));
        assert!(!done.open && !done.active);
    }

    fn file_status() -> impl Strategy<Value = FileStatus> {
        (0..=5i32).prop_map(FileStatus::from_code)
    }

    proptest! {
        /// Whatever a writer puts in a line, the parser gives back (names and details as JOB
        /// writes them: no marker inside, no space at either end).
        #[test]
        fn written_lines_parse_back(
            name in "/[a-z0-9_.-]{1,12}(/[a-z0-9 _.-]{0,12}[a-z0-9_.-])*/?",
            size in proptest::option::of(any::<u64>()),
            status in file_status(),
            speed in proptest::option::of(any::<u32>()),
            progress in proptest::option::of(0u8..=100),
            detail in proptest::option::of("[A-Za-z]([A-Za-z ,]{0,30}[A-Za-z])?"),
        ) {
            let size = size.map(display_size);
            let speed = speed.map(|kb| display_speed(u64::from(kb)));
            let progress = progress.map(display_progress);
            let written = FileLogLine {
                time: None,
                name: Some(&name),
                size: size.as_deref(),
                status: Some(status),
                status_desc: Some(status.label()),
                speed: speed.as_deref(),
                progress: progress.as_deref(),
                detail: detail.as_deref(),
            };
            let text = written.stamped(STAMP);
            let read = FileLogLine::parse(&text);
            prop_assert_eq!(read, FileLogLine { time: Some(STAMP), ..written });
        }

        /// A display size reads back within the rounding of its one decimal.
        #[test]
        fn display_sizes_parse_back(bytes in any::<u64>()) {
            let read = parse_size(&display_size(bytes)).expect("a display size parses");
            let bytes = bytes as f64;
            prop_assert!((read - bytes).abs() <= bytes * 0.05 + 0.05, "{read} vs {bytes}");
        }

        /// A display speed reads back exactly (whole KB/s), except 0 which means no speed.
        #[test]
        fn display_speeds_parse_back(kb in any::<u32>()) {
            let read = parse_speed(&display_speed(u64::from(kb)));
            prop_assert_eq!(read, (kb > 0).then(|| f64::from(kb) * 1024.0));
        }
    }
}

//! Where a time falls on a timeline of the run, shared by the text and HTML renderings.
//!
//! Each segment of the run (the first process, then each `--resume`) is drawn to scale. The
//! time between two segments, when nothing ran (an interruption and the wait for `--resume`,
//! which may be days), is drawn as a break of fixed width with its length written on it, so
//! a long pause never squeezes the run itself into a sliver.

use super::model::{Run, Time};

/// The width of one break, as a share of the whole.
const BREAK_SHARE: f64 = 0.06;

/// Maps times of the run to positions from 0 to `width`.
#[derive(Debug)]
pub(crate) struct Scale {
    pieces: Vec<Piece>,
    /// The breaks between pieces: from, to (positions) and the time not running.
    pub(crate) breaks: Vec<Break>,
    pub(crate) start: Time,
    pub(crate) end: Time,
}

#[derive(Debug)]
struct Piece {
    from: Time,
    to: Time,
    x0: f64,
    x1: f64,
}

/// Time between two segments of the run.
#[derive(Debug)]
pub(crate) struct Break {
    pub(crate) x0: f64,
    pub(crate) x1: f64,
    pub(crate) millis: i64,
}

impl Scale {
    /// The scale of a run over `width`; `None` when the journal holds no readable time.
    pub(crate) fn new(run: &Run, width: f64) -> Option<Scale> {
        let (start, end) = run.span()?;
        let mut spans: Vec<(Time, Time)> = run
            .segments
            .iter()
            .filter_map(|s| run.segment_bounds(s))
            .collect();
        spans.sort();
        let merged = merge(spans, start, end);
        let active: i64 = merged
            .iter()
            .map(|(a, b)| millis(*a, *b))
            .sum::<i64>()
            .max(1);
        let gaps: Vec<i64> = merged.windows(2).map(|w| millis(w[0].1, w[1].0)).collect();
        let widths = break_widths(&gaps, active, width);
        let per_milli = (width - widths.iter().sum::<f64>()) / active as f64;
        let mut pieces = Vec::new();
        let mut breaks = Vec::new();
        let mut x = 0.0;
        for (i, (from, to)) in merged.iter().enumerate() {
            if i > 0 {
                breaks.push(Break {
                    x0: x,
                    x1: x + widths[i - 1],
                    millis: gaps[i - 1],
                });
                x += widths[i - 1];
            }
            let w = per_milli * millis(*from, *to) as f64;
            pieces.push(Piece {
                from: *from,
                to: *to,
                x0: x,
                x1: x + w,
            });
            x += w;
        }
        Some(Scale {
            pieces,
            breaks,
            start,
            end,
        })
    }

    /// The position of `t`: within its segment to scale, inside a break proportionally,
    /// clamped to the ends.
    pub(crate) fn x(&self, t: Time) -> f64 {
        let mut previous: Option<&Piece> = None;
        for piece in &self.pieces {
            if t <= piece.to {
                if t >= piece.from {
                    let span = millis(piece.from, piece.to).max(1) as f64;
                    return piece.x0 + (piece.x1 - piece.x0) * millis(piece.from, t) as f64 / span;
                }
                return match previous {
                    // In the break before this piece.
                    Some(p) => {
                        let span = millis(p.to, piece.from).max(1) as f64;
                        p.x1 + (piece.x0 - p.x1) * millis(p.to, t) as f64 / span
                    }
                    None => piece.x0,
                };
            }
            previous = Some(piece);
        }
        previous.map_or(0.0, |p| p.x1)
    }

    /// Milliseconds from the run's start.
    pub(crate) fn offset(&self, t: Time) -> i64 {
        millis(self.start, t)
    }

    /// Ticks along the axis: positions and their offsets from the start, a round step apart
    /// inside each segment.
    pub(crate) fn ticks(&self, width: f64) -> Vec<(f64, i64)> {
        let active: i64 = self.pieces.iter().map(|p| millis(p.from, p.to)).sum();
        let step = round_step(active / 6);
        let mut ticks = Vec::new();
        for piece in &self.pieces {
            let from = self.offset(piece.from);
            let to = self.offset(piece.to);
            let mut t = (from + step - 1) / step * step;
            while t <= to && ticks.len() < 64 {
                let at = self.start + chrono::Duration::milliseconds(t);
                ticks.push((self.x(at).min(width), t));
                t += step;
            }
        }
        ticks
    }
}

/// Each break's width: to scale when that is narrower than a break's share of the width,
/// else that share (a pause of days is a break, not most of the picture).
fn break_widths(gaps: &[i64], active: i64, width: f64) -> Vec<f64> {
    let share = width * BREAK_SHARE;
    let fixed = gaps.len() as f64 * share;
    // The scale if every break took its share; a gap narrower than that at this scale is
    // drawn to scale.
    let per_milli = (width - fixed).max(width * 0.2) / active as f64;
    gaps.iter()
        .map(|&gap| (gap as f64 * per_milli).min(share))
        .collect()
}

/// Segments that overlap (a resume while the old process still wrote) become one.
fn merge(spans: Vec<(Time, Time)>, start: Time, end: Time) -> Vec<(Time, Time)> {
    let mut merged: Vec<(Time, Time)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    if merged.is_empty() {
        merged.push((start, end));
    }
    // Times written outside every segment (a damaged journal) still land on the scale.
    if let Some(first) = merged.first_mut() {
        first.0 = first.0.min(start);
    }
    if let Some(last) = merged.last_mut() {
        last.1 = last.1.max(end);
    }
    merged
}

fn millis(from: Time, to: Time) -> i64 {
    (to - from).num_milliseconds()
}

/// A step of 1, 2 or 5 times a power of ten milliseconds, at least `at_least`.
fn round_step(at_least: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= at_least.max(1) {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// A duration for people: `850 ms`, `4.2 s`, `3 min 05 s`, `2 h 07 min`, `3 d 4 h`.
pub(crate) fn duration(millis: i64) -> String {
    let ms = millis.max(0);
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {:02} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}

/// A tick's label: seconds (or minutes, hours) from the start.
pub(crate) fn tick_label(millis: i64) -> String {
    match millis {
        0 => "0".into(),
        m if m < 1_000 => format!("{m} ms"),
        m if m < 60_000 && m % 1000 != 0 => format!("{:.1} s", m as f64 / 1000.0),
        m if m < 60_000 => format!("{} s", m / 1000),
        m if m < 3_600_000 => format!("{}:{:02}", m / 60_000, m / 1000 % 60),
        m => format!("{} h {:02}", m / 3_600_000, m / 60_000 % 60),
    }
}

/// A time for people, in UTC.
pub(crate) fn clock(t: Time) -> String {
    t.with_timezone(&chrono::Utc)
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string()
}

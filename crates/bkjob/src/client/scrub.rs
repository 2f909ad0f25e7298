//! One scrubber for every text that comes from outside: server bodies, `code_name`, `message`,
//! headers such as `Location`, serde's decode errors (which quote the offending value) and
//! excerpts. A server may echo the request back, credentials included; whatever it says goes
//! through [`Scrubber`] before it can reach a terminal, a log, a journal or a report.
//!
//! A leak is not only a whole secret: a message cut to 200 characters can end in
//! `CANARY-SECRET-12`. So every run of [`FRAGMENT`] or more characters of a secret is withheld
//! (ASCII case ignored), and texts are scrubbed *before* they are cut.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::credentials::{Credentials, ENV_ACCESS_TOKEN, ENV_APP_SECRET, ENV_TOKEN};
use super::error::ApiError;

/// The shortest run of a secret's characters that counts as a leak. Shorter runs (`CANARY-`)
/// say nothing an attacker could use; requiring more would let a cut secret through.
pub const FRAGMENT: usize = 8;

/// What stands in for withheld text.
pub const WITHHELD: &str = "<credential withheld>";

/// Secrets shorter than this are not scrubbed (they would match ordinary words).
const SHORTEST_SECRET: usize = 4;

/// The longest server message kept in an error (scrubbed first, then cut).
pub(crate) const MAX_MESSAGE_CHARS: usize = 1000;
/// The longest excerpt of a body that is not what was expected.
pub(crate) const MAX_EXCERPT_CHARS: usize = 200;
/// The longest `code_name` or header value kept.
pub(crate) const MAX_NAME_CHARS: usize = 300;

/// Withholds every run of [`FRAGMENT`]+ characters of any secret (the app secret, `bk_token`,
/// `access_token`) from texts. Built once per client; cheap to clone.
#[derive(Clone)]
pub struct Scrubber {
    /// Every window of [`FRAGMENT`] characters of every secret (or the whole secret when
    /// shorter); `None` when there is nothing to scrub.
    fragments: Option<AhoCorasick>,
    /// As `fragments`, plus what may hide a secret inside raw JSON (escapes).
    raw_json: Option<AhoCorasick>,
    /// The longest secret, in characters: how far past a cut a secret can reach.
    longest: usize,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").finish_non_exhaustive()
    }
}

impl Scrubber {
    /// A scrubber for the secrets of `credentials` (not the app code or a `bk_username`,
    /// which are identifiers shown in diagnostics).
    pub fn new(credentials: &Credentials) -> Self {
        Self::for_secrets(credentials.secrets())
    }

    /// A scrubber for the secrets in the environment (`BK_APP_SECRET`, `BK_TOKEN`,
    /// `BK_ACCESS_TOKEN`), complete credentials or not: for what is written before or outside
    /// a client, such as log lines and the last error of a command.
    pub fn from_env() -> Self {
        let values: Vec<String> = [ENV_APP_SECRET, ENV_TOKEN, ENV_ACCESS_TOKEN]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .collect();
        Self::for_secrets(values.iter().map(String::as_str))
    }

    /// A scrubber for the given secret values.
    pub fn for_secrets<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let secrets: Vec<&str> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= SHORTEST_SECRET)
            .collect();
        let longest = secrets.iter().map(|s| s.chars().count()).max().unwrap_or(0);
        let mut patterns: Vec<String> = secrets.iter().flat_map(|s| windows(s)).collect();
        patterns.sort();
        patterns.dedup();
        let fragments = automaton(&patterns);
        // A JSON string may spell any character as `\uXXXX`, and escapes `"`, `\` and `/`:
        // raw bytes with such escapes are looked at again once decoded.
        patterns.push("\\u".to_owned());
        if secrets.iter().any(|s| {
            s.chars()
                .any(|c| matches!(c, '"' | '\\' | '/') || c.is_control())
        }) {
            patterns.push("\\".to_owned());
        }
        let raw_json = if fragments.is_some() {
            automaton(&patterns)
        } else {
            None
        };
        Scrubber {
            fragments,
            raw_json,
            longest,
        }
    }

    /// `text` with every run of a secret's characters replaced by [`WITHHELD`].
    pub fn scrub(&self, text: &str) -> String {
        let Some(fragments) = &self.fragments else {
            return text.to_owned();
        };
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in merged_spans(fragments, text) {
            out.push_str(&text[copied..start]);
            out.push_str(WITHHELD);
            copied = end;
        }
        out.push_str(&text[copied..]);
        out
    }

    /// `text` scrubbed, then cut to at most `max_chars` characters (`...` marks a cut). A
    /// secret that straddles the cut is withheld whole, never cut into a prefix.
    pub fn excerpt(&self, text: &str, max_chars: usize) -> String {
        // Scrubbing all of a huge text is wasted work: nothing that starts past the cut can
        // show, and a secret that starts before it ends within `longest` characters.
        let reach = max_chars.saturating_add(self.longest);
        let considered = match text.char_indices().nth(reach) {
            Some((at, _)) => &text[..at],
            None => text,
        };
        let scrubbed = self.scrub(considered);
        let cut = match scrubbed.char_indices().nth(max_chars) {
            Some((at, _)) => at,
            None if considered.len() == text.len() => return scrubbed,
            None => scrubbed.len(),
        };
        let cut = widen_over_marker(&scrubbed, cut);
        if cut == scrubbed.len() && considered.len() == text.len() {
            return scrubbed;
        }
        let mut out = scrubbed[..cut].to_owned();
        out.push_str("...");
        out
    }

    /// Whether raw JSON bytes may hold a secret once decoded (a fragment, or escapes that
    /// could spell one): the decoded strings then need scrubbing. False negatives are
    /// impossible; false positives only cost a second pass.
    pub fn may_hide_secret_in_json(&self, raw: &[u8]) -> bool {
        self.raw_json.as_ref().is_some_and(|a| a.is_match(raw))
    }

    /// Scrubs every string (and object key) in a JSON value, in place.
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if self.contains_fragment(s) {
                    *s = self.scrub(s);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            Value::Object(map) => {
                if map.keys().any(|k| self.contains_fragment(k)) {
                    let entries = std::mem::take(map);
                    *map = entries
                        .into_iter()
                        .map(|(k, v)| (self.scrub(&k), v))
                        .collect();
                }
                map.values_mut().for_each(|v| self.scrub_json(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Scrubs HTML-escaped text (v2's `log_content`) as it reads once unescaped: an entity
    /// (`&#45;`) can spell a secret that only [`crate::unescape_log`] reveals. Text that holds
    /// one is given back scrubbed and escaped again; other text is left as it came.
    pub(crate) fn scrub_html_escaped(&self, content: &mut String) {
        let plain = crate::unescape_log(content);
        if self.contains_fragment(&plain) {
            *content = html_escape::encode_safe(&self.scrub(&plain)).into_owned();
        }
    }

    /// The error with every text it carries scrubbed and bounded: the last step before an
    /// error leaves the client.
    pub fn error(&self, error: ApiError) -> ApiError {
        let text = |s: String, max: usize| self.excerpt(&s, max);
        match error {
            ApiError::Transport {
                api,
                url,
                kind,
                message,
            } => ApiError::Transport {
                api,
                url: text(url, MAX_NAME_CHARS),
                kind,
                message: text(message, MAX_MESSAGE_CHARS),
            },
            ApiError::Http {
                api,
                status,
                code,
                code_name,
                message,
                retry_after,
            } => ApiError::Http {
                api,
                status,
                code,
                code_name: code_name.map(|n| text(n, MAX_NAME_CHARS)),
                message: text(message, MAX_MESSAGE_CHARS),
                retry_after,
            },
            ApiError::Api {
                api,
                code,
                message,
                permission,
            } => ApiError::Api {
                api,
                code,
                message: text(message, MAX_MESSAGE_CHARS),
                permission: permission.map(|mut p| {
                    self.scrub_json(&mut p);
                    p
                }),
            },
            ApiError::Redirect {
                api,
                status,
                location,
            } => ApiError::Redirect {
                api,
                status,
                location: location.map(|l| text(l, MAX_NAME_CHARS)),
            },
            ApiError::Decode { api, message } => ApiError::Decode {
                api,
                message: text(message, MAX_MESSAGE_CHARS),
            },
        }
    }

    fn contains_fragment(&self, text: &str) -> bool {
        self.fragments.as_ref().is_some_and(|a| a.is_match(text))
    }
}

/// Every window of [`FRAGMENT`] characters of `secret`, or the secret itself when shorter.
fn windows(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= FRAGMENT {
        return vec![secret.to_owned()];
    }
    chars
        .windows(FRAGMENT)
        .map(|w| w.iter().collect())
        .collect()
}

fn automaton(patterns: &[String]) -> Option<AhoCorasick> {
    if patterns.is_empty() {
        return None;
    }
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(patterns)
        .ok()
}

/// The byte spans of `text` covered by fragments, overlapping and touching ones merged. A
/// secret longer than [`FRAGMENT`] matches as a chain of overlapping windows: one span.
fn merged_spans(fragments: &AhoCorasick, text: &str) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for m in fragments.find_overlapping_iter(text) {
        match spans.last_mut() {
            Some(last) if m.start() <= last.1 => last.1 = last.1.max(m.end()),
            _ => spans.push((m.start(), m.end())),
        }
    }
    spans
}

/// Moves a cut that falls inside a [`WITHHELD`] marker to the marker's end, so a cut never
/// leaves half a marker.
fn widen_over_marker(text: &str, cut: usize) -> usize {
    let from = cut.saturating_sub(WITHHELD.len() - 1);
    let from = (from..=cut)
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(cut);
    match text[from..].find(WITHHELD) {
        Some(at) if from + at < cut && from + at + WITHHELD.len() > cut => {
            from + at + WITHHELD.len()
        }
        _ => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canaries() -> Scrubber {
        Scrubber::for_secrets(["CANARY-SECRET-123", "CANARY-TOKEN-456"])
    }

    /// No run of 8 characters of either canary.
    fn assert_clean(text: &str) {
        for secret in ["CANARY-SECRET-123", "CANARY-TOKEN-456"] {
            let chars: Vec<char> = secret.chars().collect();
            for w in chars.windows(FRAGMENT) {
                let w: String = w.iter().collect();
                assert!(
                    !text.to_ascii_lowercase().contains(&w.to_ascii_lowercase()),
                    "`{w}` in {text}"
                );
            }
        }
    }

    #[test]
    fn whole_secrets_and_their_pieces_are_withheld() {
        let s = canaries();
        for text in [
            "echo: {\"bk_app_secret\":\"CANARY-SECRET-123\",\"bk_token\":\"CANARY-TOKEN-456\"}",
            "cut by the server: CANARY-SECRET-12",
            "the tail: ARY-SECRET-123 and ANARY-TO",
            "case: canary-secret-123",
            "back to back: CANARY-SECRET-123CANARY-SECRET-123",
        ] {
            let out = s.scrub(text);
            assert_clean(&out);
            assert!(out.contains(WITHHELD), "{out}");
        }
        assert_eq!(
            s.scrub("Task instance does not exist"),
            "Task instance does not exist"
        );
        // Seven characters say nothing.
        assert_eq!(s.scrub("CANARY-"), "CANARY-");
    }

    #[test]
    fn a_cut_never_leaves_a_prefix_of_a_secret() {
        let s = canaries();
        for pad in 180..200 {
            let text = format!(
                "{}CANARY-SECRET-123 and more text after it",
                "x".repeat(pad)
            );
            let out = s.excerpt(&text, 200);
            assert_clean(&out);
            let body = out.strip_suffix("...").expect("cut");
            assert!(
                !(1..WITHHELD.len()).any(|n| body.ends_with(&WITHHELD[..n])),
                "half a marker: {out}"
            );
        }
        assert_eq!(s.excerpt("short", 200), "short");
        assert_eq!(s.excerpt("abcdef", 3), "abc...");
    }

    #[test]
    fn a_huge_text_is_cut_without_being_scanned_whole() {
        let s = canaries();
        let huge = format!("{}{}", "y".repeat(10_000_000), "CANARY-SECRET-123");
        let out = s.excerpt(&huge, 100);
        assert_eq!(out.chars().count(), 103);
    }

    #[test]
    fn json_strings_and_keys_are_scrubbed() {
        let s = canaries();
        let mut v = serde_json::json!({
            "name": "job CANARY-TOKEN-456",
            "list": [{"CANARY-SECRET-123": 1}, 5, null, "fine"],
        });
        s.scrub_json(&mut v);
        assert_clean(&v.to_string());
        assert_eq!(v["list"][3], "fine");
        assert!(s.may_hide_secret_in_json(br#"{"m":"\u0043ANARY"}"#));
        assert!(s.may_hide_secret_in_json(b"CANARY-SECRET-1"));
        assert!(!s.may_hide_secret_in_json(br#"{"m":"nothing here"}"#));
    }

    #[test]
    fn html_entities_cannot_spell_a_secret_past_the_scrubber() {
        let s = canaries();
        let mut log = "copy &lt;ok&gt; CANARY&#45;SECRET&#45;123 done".to_owned();
        s.scrub_html_escaped(&mut log);
        let shown = crate::unescape_log(&log);
        assert_clean(&shown);
        assert_eq!(shown, format!("copy <ok> {WITHHELD} done"));
        let mut harmless = "a &amp; b".to_owned();
        s.scrub_html_escaped(&mut harmless);
        assert_eq!(harmless, "a &amp; b");
    }

    #[test]
    fn short_and_absent_secrets() {
        let none = Scrubber::for_secrets([]);
        assert_eq!(none.scrub("CANARY-SECRET-123"), "CANARY-SECRET-123");
        assert!(!none.may_hide_secret_in_json(b"\\u0041"));
        let short = Scrubber::for_secrets(["abc", "pass1"]);
        assert_eq!(
            short.scrub("abc pass1 pass"),
            format!("abc {WITHHELD} pass")
        );
    }
}

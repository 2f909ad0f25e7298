//! Reading the release keys of a push (`rolling`, `gate`, `verify`, `callback_url`); their
//! meaning and checks are in `crate::release`.

use toml::de::DeValue;

use super::{Value, Walker};
use crate::kind::ParseErrorKind;
use crate::model::Located;
use crate::problem::Problem;
use crate::release::{MaxFailed, RawRelease, RawRolling, Verify};

const ROLLING_KEYS: &[&str] = &[
    "expression",
    "sources_per_batch",
    "files_per_source",
    "mode",
    "max_failed",
];

impl Walker<'_> {
    /// Reads one release key of a push; false when `key` is none of them.
    pub(super) fn release_key(
        &mut self,
        key: &str,
        value: &Value<'_>,
        release: &mut RawRelease,
    ) -> bool {
        match key {
            "rolling" => release.rolling = self.rolling(value),
            "gate" => {
                release.gate = self.boolean(value, "gate").map(|b| Located {
                    value: b,
                    span: self.span(value.span()),
                });
            }
            "verify" => release.verify = self.verify(value),
            "callback_url" => release.callback_url = self.string(value, "callback_url"),
            _ => return false,
        }
        true
    }

    fn rolling(&mut self, value: &Value<'_>) -> Option<RawRolling> {
        let table = self.table(value, "rolling")?;
        let mut rolling = RawRolling {
            span: Some(self.span(value.span())),
            ..RawRolling::default()
        };
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "expression" => rolling.expression = self.string(value, "expression"),
                "sources_per_batch" => {
                    rolling.sources_per_batch = self.integer(value, "sources_per_batch");
                }
                "files_per_source" => {
                    rolling.files_per_source = self.integer(value, "files_per_source");
                }
                "mode" => rolling.mode = self.string(value, "mode"),
                "max_failed" => rolling.max_failed = self.max_failed(value),
                _ => self.unknown_key(key, ROLLING_KEYS, "`rolling`"),
            }
        }
        Some(rolling)
    }

    /// `max_failed = N` or `"N%"`.
    fn max_failed(&mut self, value: &Value<'_>) -> Option<Located<MaxFailed>> {
        let span = self.span(value.span());
        let parsed = match value.get_ref() {
            DeValue::Integer(_) => {
                let n = self.integer(value, "max_failed")?;
                u32::try_from(n.value).ok().map(MaxFailed::Hosts)
            }
            DeValue::String(s) => s
                .strip_suffix('%')
                .and_then(|d| d.parse::<u32>().ok())
                .filter(|p| *p <= 100)
                .map(MaxFailed::Percent),
            _ => {
                self.wrong_type(
                    value,
                    "a number of hosts or a percentage such as \"10%\"",
                    "max_failed",
                );
                return None;
            }
        };
        if parsed.is_none() {
            self.push(
                Problem::error(
                    ParseErrorKind::OutOfRange.code(),
                    "`max_failed` is not a number of hosts or a percentage",
                )
                .with_label(span, "expected 0 or more hosts, or \"0%\" to \"100%\"")
                .with_help("for example `max_failed = 2` or `max_failed = \"10%\"`"),
            );
        }
        parsed.map(|value| Located { value, span })
    }

    fn verify(&mut self, value: &Value<'_>) -> Option<Located<Verify>> {
        let s = self.string(value, "verify")?;
        let verify = match s.value.as_str() {
            "size" => Verify::Size,
            "sha256" => Verify::Sha256,
            other => {
                self.push(
                    Problem::error(
                        ParseErrorKind::InvalidVerify.code(),
                        format!("unknown verification `{}`: expected \"size\" or \"sha256\"", crate::problem::shown(other)),
                    )
                    .with_label(s.span, "unknown verification")
                    .with_help("\"size\" compares JOB's file log with the source, \"sha256\" hashes the delivered files"),
                );
                return None;
            }
        };
        Some(Located {
            value: verify,
            span: s.span,
        })
    }
}

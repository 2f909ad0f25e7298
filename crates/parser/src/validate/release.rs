//! The checks of a push's release keys (`rolling`, `gate`, `verify`, `callback_url`): the ones
//! that need the API family, the targets and the sources. Reading is in `raw/release.rs`.

use super::{Builder, PlanSettings};
use crate::kind::ParseErrorKind;
use crate::model::{ApiVersion, Located, Origin, Setting, Source, Span, Target};
use crate::paths::regex_part;
use crate::problem::Problem;
use crate::raw::RawPush;
use crate::release::{
    RawRolling, Release, Rolling, RollingMode, RollingOver, Verify, is_static, mode_from_name,
    parse_expression,
};

/// The longest `callback_url` accepted: JOB stores it in a `varchar(512)`.
const CALLBACK_URL_MAX: usize = 512;

/// What the checks of one push's release keys look at.
pub(super) struct ReleaseScope<'a> {
    pub(super) api: ApiVersion,
    pub(super) target: Option<&'a Target>,
    pub(super) sources: &'a [Source],
    pub(super) enabled: bool,
}

impl Builder<'_> {
    /// The push's release settings, each problem reported at its key.
    pub(super) fn release(
        &mut self,
        raw: &RawPush,
        settings: Option<&PlanSettings>,
        scope: &ReleaseScope<'_>,
    ) -> Release {
        let release = &raw.release;
        let rolling = release
            .rolling
            .as_ref()
            .and_then(|r| self.rolling(r, scope));
        let gate = release.gate.as_ref().filter(|g| g.value).map(|g| g.span);
        if let Some(span) = gate.filter(|_| !scope.enabled) {
            self.error(
                Problem::error(
                    ParseErrorKind::UnapprovableGate.code(),
                    "a gate on a push that never runs",
                )
                .with_label(
                    span,
                    "`enabled = false`: nothing would ever ask for this approval",
                )
                .with_help("remove `gate`, or enable the push"),
            );
        }
        if let Some(verify) = &release.verify {
            self.check_verify(verify, scope.sources);
        }
        let callback_url = match &release.callback_url {
            Some(url) => self.callback_url(url).map(|value| Setting {
                value,
                origin: Origin::Push,
                span: url.span,
            }),
            None => settings.and_then(|s| s.callback_url.clone()),
        };
        Release {
            rolling,
            gate,
            verify: release.verify.clone(),
            callback_url,
        }
    }

    /// `[plan] callback_url`.
    pub(super) fn plan_callback_url(
        &mut self,
        url: Option<&Located<String>>,
    ) -> Option<Setting<String>> {
        let url = url?;
        self.callback_url(url).map(|value| Setting {
            value,
            origin: Origin::Plan,
            span: url.span,
        })
    }

    /// An `http://` or `https://` URL without credentials (a plan holds none) and within JOB's
    /// column.
    fn callback_url(&mut self, url: &Located<String>) -> Option<String> {
        let value = self.subst(url)?;
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"));
        let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
        let problem = match authority {
            None | Some("") => Some("expected an http:// or https:// URL"),
            Some(a) if a.contains('@') => {
                self.error(
                    Problem::error(
                        ParseErrorKind::CredentialInPlan.code(),
                        "credentials are not accepted in a plan (user information in `callback_url`)",
                    )
                    .with_label(url.span, "remove the user and password from the URL")
                    .with_help(crate::raw::CREDENTIALS_HELP),
                );
                return None;
            }
            _ if value.len() > CALLBACK_URL_MAX => Some("JOB keeps at most 512 characters"),
            _ if value.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Some("a URL holds no spaces or control characters")
            }
            _ => None,
        };
        match problem {
            Some(why) => {
                self.error(
                    Problem::error(ParseErrorKind::OutOfRange.code(), "`callback_url` is not a URL JOB can call")
                        .with_label(url.span, why)
                        .with_help("JOB POSTs the job's status to this URL when the job ends, e.g. \"https://ci.example.com/hooks/job\""),
                );
                None
            }
            None => Some(value),
        }
    }

    fn rolling(&mut self, raw: &RawRolling, scope: &ReleaseScope<'_>) -> Option<Rolling> {
        let span = raw.span?;
        let mode = match &raw.mode {
            None => RollingMode::PauseOnFailure,
            Some(m) => match mode_from_name(&m.value) {
                Some(mode) => mode,
                None => {
                    self.error(
                        Problem::error(
                            ParseErrorKind::InvalidRolling.code(),
                            format!("unknown rolling mode `{}`", crate::problem::shown(&m.value)),
                        )
                        .with_label(m.span, "unknown mode")
                        .with_help("expected \"pause-on-failure\" (the default), \"ignore-failure\" or \"manual\""),
                    );
                    return None;
                }
            },
        };
        let over = self.rolling_over(raw, span, scope)?;
        if let (Some(max), ApiVersion::V3) = (&raw.max_failed, scope.api) {
            self.error(
                Problem::warning(
                    ParseErrorKind::InvalidRolling.code(),
                    "`max_failed` is for plan-made (v2) batches: JOB's v3 rolling ignores it",
                )
                .with_label(max.span, "not sent to JOB")
                .with_help("under v3 the mode decides: \"pause-on-failure\" stops at the first batch with a failed host"),
            );
        }
        Some(Rolling {
            over,
            mode,
            max_failed: raw.max_failed.clone(),
            span,
        })
    }

    fn rolling_over(
        &mut self,
        raw: &RawRolling,
        span: Span,
        scope: &ReleaseScope<'_>,
    ) -> Option<RollingOver> {
        let by_sources = raw
            .sources_per_batch
            .as_ref()
            .or(raw.files_per_source.as_ref());
        match (&raw.expression, by_sources) {
            (Some(expression), Some(other)) => {
                self.error(
                    Problem::error(
                        ParseErrorKind::ConflictingKeys.code(),
                        "a push rolls over its targets or over its sources, not both",
                    )
                    .with_label(expression.span, "batches of target hosts")
                    .with_label(other.span, "batches of source files")
                    .with_help("keep `expression` (targets) or `sources_per_batch`/`files_per_source` (sources)"),
                );
                None
            }
            (None, None) => {
                self.error(
                    Problem::error(
                        ParseErrorKind::InvalidRolling.code(),
                        "`rolling` says nothing about its batches",
                    )
                    .with_label(
                        span,
                        "no `expression`, `sources_per_batch` or `files_per_source`",
                    )
                    .with_help("write `expression = \"1 30% 100%\"` to roll over the targets"),
                );
                None
            }
            (Some(expression), None) => self.rolling_targets(expression, scope),
            (None, Some(_)) => self.rolling_sources(raw, scope),
        }
    }

    fn rolling_targets(
        &mut self,
        expression: &Located<String>,
        scope: &ReleaseScope<'_>,
    ) -> Option<RollingOver> {
        let text = self.sources.get(expression.span.file).text.clone();
        let parsed = match parse_expression(&text, expression) {
            Ok(parsed) => parsed,
            Err(problem) => {
                self.error(problem);
                return None;
            }
        };
        let target = scope.target?;
        if scope.api == ApiVersion::V2 && !is_static(&target.hosts) {
            self.error(
                Problem::error(
                    ParseErrorKind::RollingNeedsStaticHosts.code(),
                    "rolling under v2 needs static target hosts",
                )
                .with_label(target.span, "dynamic groups or topology nodes: the batches cannot be cut before JOB resolves them")
                .with_help("under v2 the plan cuts the batches itself: name the hosts, or use `api = \"v3\"` where JOB rolls over any target"),
            );
            return None;
        }
        let hosts = target.hosts.ips.len() + target.hosts.host_ids.len();
        if let Err(too_many) = parsed.batch_sizes(hosts) {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidRolling.code(),
                    "JOB refuses this many batches (code 1244027)",
                )
                .with_label(expression.span, too_many.to_string()),
            );
            return None;
        }
        Some(RollingOver::Targets {
            expression: expression.clone(),
            parsed,
        })
    }

    fn rolling_sources(
        &mut self,
        raw: &RawRolling,
        scope: &ReleaseScope<'_>,
    ) -> Option<RollingOver> {
        let mut positive = |v: &Option<Located<i64>>, key: &str| -> Result<Option<u32>, ()> {
            match v {
                None => Ok(None),
                Some(n) => match u32::try_from(n.value)
                    .ok()
                    .filter(|n| (1..=i32::MAX as u32).contains(n))
                {
                    Some(n) => Ok(Some(n)),
                    None => {
                        self.error(
                            Problem::error(
                                ParseErrorKind::OutOfRange.code(),
                                format!("`{key}` must be at least 1"),
                            )
                            .with_label(n.span, format!("found {}", n.value)),
                        );
                        Err(())
                    }
                },
            }
        };
        let sources_per_batch = positive(&raw.sources_per_batch, "sources_per_batch");
        let files_per_source = positive(&raw.files_per_source, "files_per_source");
        let (Ok(sources_per_batch), Ok(files_per_source)) = (sources_per_batch, files_per_source)
        else {
            return None;
        };
        if scope.api == ApiVersion::V2 {
            let span = raw
                .sources_per_batch
                .as_ref()
                .or(raw.files_per_source.as_ref())
                .map(|l| l.span)?;
            self.error(
                Problem::error(
                    ParseErrorKind::V3Only.code(),
                    "rolling over sources is JOB's v3 rolling only",
                )
                .with_label(span, "v2 has no rolling_config")
                .with_help("use `api = \"v3\"`, or roll over the targets with `expression`"),
            );
            return None;
        }
        Some(RollingOver::Sources {
            sources_per_batch,
            files_per_source,
        })
    }

    /// `verify = "sha256"` hashes files by name on every host: a pattern, a directory or a
    /// file source has no name to hash.
    fn check_verify(&mut self, verify: &Located<Verify>, sources: &[Source]) {
        if verify.value != Verify::Sha256 {
            return;
        }
        for source in sources {
            if let Some(fs) = &source.file_source {
                self.error(
                    Problem::error(
                        ParseErrorKind::InvalidVerify.code(),
                        "`verify = \"sha256\"` cannot hash a JOB file source",
                    )
                    .with_label(fs.span, "no host to run the hashing script on")
                    .with_label(verify.span, "asked here")
                    .with_help("use `verify = \"size\"`, which reads JOB's file log"),
                );
                continue;
            }
            for file in &source.files {
                let why = if regex_part(&file.path).is_some() {
                    Some("a `REGEX:` pattern")
                } else if file.path.contains('*') {
                    Some("a wildcard")
                } else if file.is_directory() {
                    Some("a directory")
                } else {
                    None
                };
                if let Some(why) = why {
                    self.error(
                        Problem::error(
                            ParseErrorKind::InvalidVerify.code(),
                            format!("`verify = \"sha256\"` cannot hash {why}"),
                        )
                        .with_label(file.span, "the hashing script needs the files' names")
                        .with_label(verify.span, "asked here")
                        .with_help("name each file, or use `verify = \"size\"`, which reads JOB's file log"),
                    );
                }
            }
        }
    }
}

//! `plan apply`: run a plan against BK-JOB (or the embedded simulator) and say exactly what
//! happened.
//!
//! Everything that decides and does lives in `plan-executor`; this module picks the target
//! (`--sandbox` starts `jobsim` on loopback with credentials of its own; `--endpoint` needs the
//! credential variables), checks the endpoint answers, asks for confirmation on a terminal
//! against a real endpoint, wires Ctrl-C / SIGTERM to the executor's interrupt, renders events
//! (progress bars, plain lines or NDJSON) and the final report, and maps the outcome to the
//! exit codes of `design/cli.md`.

mod confirm;
mod progress;
mod report;

use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use plan_bkjob::{Client, ClientConfig, Credentials, Endpoint, Flavor, TlsConfig, UserAuth};
use plan_executor::{
    ApplyEvent, BkJobApi, ContinuePolicy, EVENTS_FORMAT_VERSION, Event, Interrupt, Options,
    PollPolicy, RunReport, Schedule, Settings, StartError,
};
use plan_graph::PlanGraph;
use plan_parser::{Api, Plan};

use crate::args::{ApplyArgs, ApplyFormat, ContinueChoice, ScheduleChoice};
use crate::diagnostics::print_problems;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(args: &ApplyArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    // A saved plan (`plan show --save`) is applied from the texts it embeds; `--expect`
    // refuses any other hash. Both before a target is opened: nothing is sent on a refusal.
    let loaded = match crate::saved::load_for_apply(
        &args.plan,
        &args.vars,
        args.api,
        args.expect.as_ref(),
        printer,
    ) {
        Ok(loaded) => loaded,
        Err(status) => {
            // A program reading the NDJSON learns why there is no run; the diagnostics
            // themselves went to stderr, with their places in the plan.
            if status == ExitStatus::Invalid && args.format == ApplyFormat::Json {
                report::Out::new(*printer, true).cannot_start(
                    &format!("`{}` is not a valid plan: nothing was sent", args.plan.display()),
                    Some("the diagnostics on stderr point at each problem; `plan check --format json` lists them as data"),
                );
            }
            return Ok(status);
        }
    };
    print_problems(printer, &loaded.parsed.plan.sources, &loaded.warnings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let plan = Arc::new(loaded.parsed.plan);
    let graph = Arc::new(loaded.graph);
    runtime.block_on(apply(args, printer, plan, graph))
}

/// Where the run goes.
enum Target {
    Sandbox(plan_jobsim::RunningSim),
    Endpoint,
}

/// A target opened: what it is, its URL and the credentials to present.
struct Opened {
    target: Target,
    endpoint: Endpoint,
    credentials: Credentials,
}

/// A push whose `verify` could not be carried out after its transfer (a `REGEX:`, wildcard
/// or directory source, a file source, sources resolved by CMDB, an account given by id):
/// refused before anything is sent rather than failed after the bytes moved.
fn unverifiable(plan: &Plan) -> Option<String> {
    plan.pushes.iter().filter(|p| p.enabled).find_map(|push| {
        plan_executor::cannot_verify(plan.api, push).map(|reason| {
            format!(
                "push `{}` asks for `verify`, which cannot be carried out: {reason}; nothing was sent",
                push.name.value
            )
        })
    })
}

/// Why `--junit FILE` could not be written when the run ends, told before anything is sent:
/// a CI job must not learn after a whole run that its report went nowhere.
fn junit_not_writable(path: &std::path::Path) -> Option<String> {
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    if path.is_dir() {
        return Some(format!(
            "`--junit {}` is a directory; nothing was sent",
            path.display()
        ));
    }
    (!parent.is_dir()).then(|| {
        format!(
            "`--junit {}`: directory {} does not exist; nothing was sent",
            path.display(),
            parent.display()
        )
    })
}

/// The phases of an apply, in order. Each phase that refuses to go on says why and gives
/// the exit status; the embedded simulator, once started, is shut down whatever happens.
async fn apply(
    args: &ApplyArgs,
    printer: &Printer,
    plan: Arc<Plan>,
    graph: Arc<PlanGraph>,
) -> anyhow::Result<ExitStatus> {
    let out = report::Out::new(*printer, args.format == ApplyFormat::Json);
    if let Some(unknown) = args.confirm.iter().find(|name| plan.push(name).is_none()) {
        out.cannot_start(
            &format!("`--confirm {unknown}`: plan `{}` has no push `{unknown}`", plan.name.value),
            Some("name a push of the plan that waits at its gate or for a rolling batch's confirmation"),
        );
        return Ok(ExitStatus::Usage);
    }
    if let Some(message) = args.junit.as_deref().and_then(junit_not_writable) {
        out.cannot_start(
            &message,
            Some("name a file in an existing directory; the report is written when the run ends"),
        );
        return Ok(ExitStatus::CannotStart);
    }
    if let Some(message) = unverifiable(&plan) {
        out.cannot_start(
            &message,
            Some("`verify` reads literal files on named source hosts under an account alias: name the files, or remove `verify` from this push"),
        );
        return Ok(ExitStatus::CannotStart);
    }
    let Some(state_dir) = state_dir(args, &out) else {
        return Ok(ExitStatus::CannotStart);
    };
    let Opened {
        target,
        endpoint,
        credentials,
    } = match open_target(args, &out).await? {
        Ok(opened) => opened,
        Err(status) => return Ok(status),
    };
    let sandbox = matches!(target, Target::Sandbox(_));
    let on_target = OnTarget {
        args,
        printer,
        out: &out,
        endpoint: &endpoint,
        sandbox,
        ctrl_c: Arc::new(AtomicBool::new(false)),
        plan_hash: plan_graph::content_hash(&plan, &graph),
    };
    let status = on_target.apply(credentials, plan, graph, state_dir).await;
    shutdown(target).await;
    status
}

/// `--sandbox DIR` starts the simulator; `--endpoint URL` takes credentials from the
/// environment. `Err` is the exit status of a target that cannot be opened (said already).
async fn open_target(
    args: &ApplyArgs,
    out: &report::Out,
) -> anyhow::Result<Result<Opened, ExitStatus>> {
    match (&args.sandbox, &args.endpoint) {
        (Some(dir), _) => open_sandbox(dir, args.gateway, out).await,
        (None, Some(url)) => Ok(open_endpoint(url, args.gateway, out)),
        (None, None) => {
            out.cannot_start(
                "no target: nothing to apply the plan to",
                Some("pass `--sandbox DIR` to run against the embedded simulator, or `--endpoint URL` (or BK_JOB_ENDPOINT) for a real BK-JOB"),
            );
            Ok(Err(ExitStatus::CannotStart))
        }
    }
}

async fn open_sandbox(
    dir: &std::path::Path,
    gateway: bool,
    out: &report::Out,
) -> anyhow::Result<Result<Opened, ExitStatus>> {
    if !dir.is_dir() {
        out.cannot_start(
            &format!("sandbox `{}` is not a directory", dir.display()),
            Some("a sandbox is a directory with `hosts/<bk_cloud_id>/<ip>/` inside: see `examples/quickstart/sandbox`"),
        );
        return Ok(Err(ExitStatus::CannotStart));
    }
    // On loopback, with an app of random code and secret registered for this run only:
    // other local processes can reach the port but hold no credentials it accepts.
    let (sim, app) = match plan_jobsim::JobSim::start_private(dir).await {
        Ok(started) => started,
        Err(e) => {
            out.cannot_start(
                &format!("cannot start the simulator for `{}`: {e}", dir.display()),
                None,
            );
            return Ok(Err(ExitStatus::CannotStart));
        }
    };
    // `--gateway` goes through the simulator's API-gateway front door instead of ESB.
    let base = if gateway {
        format!("{}/api/bk-job/prod", sim.base_url())
    } else {
        sim.base_url()
    };
    let endpoint = match Endpoint::parse(&base, gateway) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            sim.shutdown().await;
            return Err(e.into());
        }
    };
    // The run's own app: real credentials never reach the sandbox.
    let credentials =
        Credentials::new(&app.code, &app.secret, UserAuth::Username("sandbox".into()));
    Ok(Ok(Opened {
        target: Target::Sandbox(sim),
        endpoint,
        credentials,
    }))
}

fn open_endpoint(url: &str, gateway: bool, out: &report::Out) -> Result<Opened, ExitStatus> {
    let endpoint = Endpoint::parse(url, gateway).map_err(|e| {
        out.cannot_start(&e.to_string(), None);
        ExitStatus::CannotStart
    })?;
    let credentials = Credentials::from_env().map_err(|e| {
        out.cannot_start(
            &e.to_string(),
            Some("credentials come only from the environment: BK_APP_CODE, BK_APP_SECRET and one of BK_USERNAME, BK_TOKEN, BK_ACCESS_TOKEN"),
        );
        ExitStatus::CannotStart
    })?;
    Ok(Opened {
        target: Target::Endpoint,
        endpoint,
        credentials,
    })
}

/// The phases run once a target is open: connect, announce, dry run or confirm, run, report.
struct OnTarget<'a> {
    args: &'a ApplyArgs,
    printer: &'a Printer,
    out: &'a report::Out,
    endpoint: &'a Endpoint,
    sandbox: bool,
    /// Set by the user's own Ctrl-C (not SIGTERM): the closing line then says how to go on.
    ctrl_c: Arc<AtomicBool>,
    /// The plan's content hash as loaded (before any `--converge` narrowing): what was
    /// reviewed, journaled with the run.
    plan_hash: String,
}

impl OnTarget<'_> {
    async fn apply(
        &self,
        credentials: Credentials,
        plan: Arc<Plan>,
        graph: Arc<PlanGraph>,
        state_dir: std::path::PathBuf,
    ) -> anyhow::Result<ExitStatus> {
        let client = match self.connect(credentials, &plan).await {
            Ok(client) => client,
            Err(status) => return Ok(status),
        };
        let (plan, graph, refresh) = match self.converged(&client, plan, graph, &state_dir).await {
            Ok(narrowed) => narrowed,
            Err(status) => return Ok(status),
        };
        self.announce(&plan, &graph);
        if self.args.dry_run {
            self.out.dry_run(&plan, &graph);
            return Ok(ExitStatus::Success);
        }
        if !self.confirmed(&plan, &graph) {
            return Ok(ExitStatus::CannotStart);
        }
        let result = self
            .execute(client, Arc::clone(&plan), graph, state_dir, refresh)
            .await;
        Ok(self.finish(&plan, result))
    }

    /// A client for the target that answers and accepts the credentials; `Err` is the exit
    /// status when it does not (said already).
    async fn connect(&self, credentials: Credentials, plan: &Plan) -> Result<Client, ExitStatus> {
        let (args, out, endpoint) = (self.args, self.out, self.endpoint);
        if endpoint.flavor() == Flavor::Gateway && plan.api == Api::V2 {
            out.cannot_start(
                "the BlueKing API gateway publishes only JOB's v3 API, and this plan uses v2",
                Some("set `api = \"v3\"` in [plan] or pass `--api v3`, or use the ESB endpoint"),
            );
            return Err(ExitStatus::CannotStart);
        }
        let tls = tls_config(args, out).ok_or(ExitStatus::CannotStart)?;
        let config = ClientConfig {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(args.http_timeout),
            ..ClientConfig::default()
        };
        let client = Client::with_tls(endpoint.clone(), credentials, config, &tls).map_err(|e| {
            let help = args.ca_cert.as_ref().map(|p| {
                format!(
                    "`{}` (from --ca-cert or BK_JOB_CA_CERT) must hold the CA's certificate in PEM form",
                    p.display()
                )
            });
            out.cannot_start(&e.to_string(), help.as_deref());
            ExitStatus::CannotStart
        })?;
        // An unreachable endpoint is reported before anything else happens, quickly.
        if let Err(e) = client.probe().await {
            out.cannot_start(
                &format!("endpoint `{}` is unreachable: {e}", endpoint.as_str()),
                Some("check the URL, the network and any proxy"),
            );
            return Err(ExitStatus::CannotStart);
        }
        // Credentials refused by ESB or the gateway are a reason not to start, found before
        // the lock, the journal or any submission (one status query for a job that cannot
        // exist).
        if !self.sandbox
            && let Err(e) = client
                .check_credentials(plan.bk_biz_id.value, plan.api == Api::V2)
                .await
        {
            let (message, help) = refused_credentials(endpoint, &e);
            out.cannot_start(&message, Some(help));
            return Err(ExitStatus::CannotStart);
        }
        Ok(client)
    }

    /// `--converge`: the plan narrowed to the targets a refresh found different (said, one
    /// line per push, on stderr). A push every target of which is up to date is left out of
    /// the plan (reported `up to date` by the run). `Err` is the exit status when nothing is
    /// to be run: 4 when the refresh failed without `--converge-fallback`.
    async fn converged(
        &self,
        client: &Client,
        plan: Arc<Plan>,
        graph: Arc<PlanGraph>,
        state_dir: &std::path::Path,
    ) -> Result<(Arc<Plan>, Arc<PlanGraph>, Option<plan_executor::Refresh>), ExitStatus> {
        if !self.args.converge {
            return Ok((plan, graph, None));
        }
        let refreshed = if self.args.resume {
            crate::refresh::journaled(state_dir, &plan)
                .map(Ok)
                .map_err(|e| {
                    self.out.cannot_start(
                        &format!("cannot resume a converge run: {e}"),
                        Some("`--resume --converge` continues the last `--converge` run with the refresh its journal recorded; without it, resume without `--converge`"),
                    );
                    ExitStatus::CannotStart
                })?
        } else {
            let settings = plan_executor::RefreshSettings::default();
            plan_executor::refresh(client, &plan, settings).await
        };
        let refresh = match refreshed {
            Ok(refresh) => refresh,
            Err(e) if self.args.converge_fallback => {
                self.out.stderr(&format!(
                    "warning: the refresh failed ({e}): every push goes to every target (--converge-fallback)"
                ));
                return Ok((plan, graph, None));
            }
            Err(e) => {
                self.out.cannot_start(
                    &format!("cannot converge: {e}"),
                    Some("nothing was sent; pass `--converge-fallback` to push everything when the refresh fails, or apply without `--converge`"),
                );
                return Err(ExitStatus::CannotStart);
            }
        };
        let converged = plan_executor::converge(&plan, &graph, &refresh);
        if !self.printer.quiet {
            // A resumed run reads nothing: its refresh is the one its journal recorded.
            self.out.stderr(&if self.args.resume {
                "the refresh recorded in the run's journal:".to_owned()
            } else {
                format!(
                    "refreshed in {} JOB script {}:",
                    refresh.jobs.len(),
                    if refresh.jobs.len() == 1 {
                        "job"
                    } else {
                        "jobs"
                    }
                )
            });
            for line in crate::refresh::convergence_lines(&converged.pushes) {
                self.out.stderr(&format!("  {line}"));
            }
        }
        if converged.plan.pushes.iter().all(|p| !p.enabled) {
            // The run still goes through the executor, journal and outputs included: a CI job
            // reads its NDJSON lines and JUnit cases (every push `up to date`) as for any run.
            self.out.stderr("every push is up to date: nothing to send");
        }
        match plan_graph::build(&converged.plan) {
            Ok(narrowed) => Ok((Arc::new(converged.plan), Arc::new(narrowed), Some(refresh))),
            // Narrowing never makes a valid plan invalid; should it, the whole plan runs.
            Err(_) => Ok((plan, graph, None)),
        }
    }

    /// The first line of the run's output, and the TLS warning an archived stream must carry.
    fn announce(&self, plan: &Plan, graph: &PlanGraph) {
        let out = self.out;
        out.started(
            plan,
            graph,
            self.endpoint.as_str(),
            self.sandbox,
            self.args.dry_run,
        );
        if self.args.insecure_skip_tls_verify && out.json {
            // The stream a CI job archives says it too (stderr already did, before the first
            // line).
            out.json_line(&ApplyEvent::Warning {
                message: "TLS certificate verification is OFF (--insecure-skip-tls-verify): the endpoint's identity was not checked".to_owned(),
            });
        }
    }

    /// A real endpoint asks on a terminal unless `--yes`; false when not confirmed (said).
    fn confirmed(&self, plan: &Plan, graph: &PlanGraph) -> bool {
        // A plan with nothing enabled (under `--converge`: every push up to date) sends
        // nothing: there is nothing to confirm.
        let sends_nothing = plan.pushes.iter().all(|p| !p.enabled);
        if self.sandbox || !self.printer.interactive || self.args.yes || sends_nothing {
            return true;
        }
        let endpoint = self.endpoint.as_str();
        self.out.summary_for_confirmation(plan, graph, endpoint);
        let yes = confirm(&format!("apply plan `{}` to {endpoint}?", plan.name.value));
        if !yes {
            self.out.cannot_start(
                "not applied: not confirmed",
                Some("pass `--yes` to skip the question"),
            );
        }
        yes
    }

    /// The run, with signals wired to the interrupt and events rendered as they come.
    async fn execute(
        &self,
        client: Client,
        plan: Arc<Plan>,
        graph: Arc<PlanGraph>,
        state_dir: std::path::PathBuf,
        refresh: Option<plan_executor::Refresh>,
    ) -> Result<RunReport, StartError> {
        let args = self.args;
        let interrupt = Interrupt::new();
        let signals = tokio::spawn(listen_for_signals(
            interrupt.clone(),
            Arc::clone(&self.ctrl_c),
        ));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let renderer = tokio::spawn(progress::render(rx, *self.out));
        let confirmations = confirm::Confirmations::new(&args.confirm);
        let settings = Settings {
            options: options(args),
            state_dir,
            resume: args.resume,
            plan_file: args.plan.display().to_string(),
            insecure_skip_tls_verify: args.insecure_skip_tls_verify,
            force: args.force,
            refresh,
            confirmer: confirmations.confirmer.clone(),
            plan_hash: Some(self.plan_hash.clone()),
        };
        let result =
            plan_executor::apply(BkJobApi::new(client), plan, graph, settings, interrupt, tx).await;
        let _ = renderer.await;
        if result.is_ok() {
            for name in confirmations.unused() {
                self.out.stderr(&format!(
                    "warning: `--confirm {name}`: push `{name}` did not wait at its gate or for a rolling batch in this run, so nothing was approved for it"
                ));
            }
        }
        signals.abort();
        result
    }

    /// The report and the exit code.
    fn finish(&self, plan: &Plan, result: Result<RunReport, StartError>) -> ExitStatus {
        match result {
            Ok(report) => {
                let closing = report::Closing {
                    resume: self.resume_command(),
                    ctrl_c: self.ctrl_c.load(Ordering::SeqCst),
                };
                self.out.report(plan, &report, &closing);
                if let Some(path) = &self.args.junit {
                    let written = fs_err::write(path, crate::ci_formats::apply_junit(&report));
                    if let Err(e) = written {
                        let message = format!("cannot write the JUnit report: {e}");
                        self.out.run_error(&message, None, Some(&report.run_id));
                    }
                }
                if let Some(error) = &report.journal_error {
                    let help = Some(JOURNAL_FAILED_HELP);
                    self.out.run_error(error, help, Some(&report.run_id));
                }
                exit_status(&report)
            }
            Err(error) => {
                self.out.start_error(&error);
                ExitStatus::CannotStart
            }
        }
    }
}

impl OnTarget<'_> {
    /// The command that continues this run: the plan and the target as given, `--resume`.
    fn resume_command(&self) -> String {
        let args = self.args;
        let mut command = format!("plan apply {}", quoted(&args.plan.display().to_string()));
        if let Some(dir) = &args.sandbox {
            command.push_str(&format!(
                " --sandbox {}",
                quoted(&dir.display().to_string())
            ));
        } else if let Some(url) = &args.endpoint {
            command.push_str(&format!(" --endpoint {}", quoted(url)));
        }
        if args.gateway {
            command.push_str(" --gateway");
        }
        command + " --resume"
    }
}

/// A word as a POSIX shell reads it back: as is when plain, else in single quotes.
fn quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Why credentials were refused, and what to do: an untrusted certificate, something that is
/// not BK-JOB, an unreachable endpoint, or credentials really refused.
fn refused_credentials(endpoint: &Endpoint, e: &plan_bkjob::ApiError) -> (String, &'static str) {
    if e.is_certificate_error() {
        (
            format!(
                "the TLS certificate of `{}` is not trusted: {e}",
                endpoint.as_str()
            ),
            "if the endpoint's certificate comes from your organisation's own CA, pass `--ca-cert FILE` (or set BK_JOB_CA_CERT) with that CA's certificate in PEM form; `--insecure-skip-tls-verify` turns checking off entirely (unsafe)",
        )
    } else if e.is_not_bk_job() {
        (
            format!(
                "`{}` does not answer as BK-JOB's ESB or API gateway: {e}",
                endpoint.as_str()
            ),
            "check the URL: ESB's base URL (`https://paas.example.com`), or the gateway's ending in `/api/bk-job/<stage>` (`--gateway` alone does not add that path)",
        )
    } else if matches!(e, plan_bkjob::ApiError::Transport { .. }) {
        (
            format!("endpoint `{}` is unreachable: {e}", endpoint.as_str()),
            "check the URL, the network and any proxy",
        )
    } else {
        (
            format!("`{}` refused the credentials: {e}", endpoint.as_str()),
            "check BK_APP_CODE, BK_APP_SECRET and the user credential (BK_USERNAME, BK_TOKEN or BK_ACCESS_TOKEN); through the API gateway the app also needs a grant for JOB's resources",
        )
    }
}

/// The TLS settings of the flags: an extra CA read from `--ca-cert`, or no verification at
/// all with a warning that cannot be missed. `None` when the CA file cannot be read (the
/// reason is printed).
fn tls_config(args: &ApplyArgs, out: &report::Out) -> Option<TlsConfig> {
    let mut tls = TlsConfig::default();
    if args.insecure_skip_tls_verify {
        // On every run, whatever the verbosity: this flag must never go unnoticed in a log.
        out.stderr(
            "warning: TLS certificate verification is OFF (--insecure-skip-tls-verify): the endpoint's identity is not checked, so anyone on the network path can read the credentials and alter requests\n  help: trust the endpoint's CA with `--ca-cert FILE` (or BK_JOB_CA_CERT) instead",
        );
        tls.insecure_skip_verify = true;
        return Some(tls);
    }
    if let Some(path) = &args.ca_cert {
        match fs_err::read(path) {
            Ok(pem) => tls.extra_ca_pem.push(pem),
            Err(e) => {
                out.cannot_start(
                    &format!("cannot read the CA certificate: {e}"),
                    Some("--ca-cert (or BK_JOB_CA_CERT) names a PEM file with the CA certificate(s) to trust"),
                );
                return None;
            }
        }
    }
    Some(tls)
}

/// What to do after a journal write failed mid-run.
const JOURNAL_FAILED_HELP: &str = "the run stopped because its journal could not be written (a full disk, a file-size limit, an I/O error): nothing more was submitted. Make room (or raise the limit), then run the same command with `--resume`: jobs whose ids are on disk are followed again, never submitted twice; a submission whose answer could not be recorded shows as in doubt";

/// `--state-dir` (or `PLAN_STATE_DIR`), else the plan's own state dir; `None` when the
/// plan's real path cannot be found (said on the way out).
fn state_dir(args: &ApplyArgs, out: &report::Out) -> Option<std::path::PathBuf> {
    if let Some(dir) = &args.state_dir {
        return Some(dir.clone());
    }
    match plan_executor::default_state_dir(&args.plan) {
        Ok(dir) => Some(dir),
        Err(e) => {
            out.cannot_start(
                &format!(
                    "cannot find where plan `{}` keeps its journal and lock: {e}",
                    args.plan.display()
                ),
                Some("pass `--state-dir DIR` (or set PLAN_STATE_DIR)"),
            );
            None
        }
    }
}

fn exit_status(report: &RunReport) -> ExitStatus {
    if report.journal_error.is_some() {
        // The run could not go on: what happened is on disk only up to the failed write.
        ExitStatus::CannotStart
    } else if report.interrupted.is_interrupted() {
        ExitStatus::Interrupted
    } else if report.succeeded() {
        ExitStatus::Success
    } else if report.awaits_confirmation() {
        ExitStatus::AwaitingConfirmation
    } else {
        ExitStatus::PushFailed
    }
}

fn options(args: &ApplyArgs) -> Options {
    let first = Duration::from_millis(args.poll_interval.max(1));
    Options {
        parallelism: usize::try_from(args.parallelism).unwrap_or(1).max(1),
        schedule: match args.schedule {
            ScheduleChoice::Stages => Schedule::Stages,
            ScheduleChoice::Eager => Schedule::Eager,
        },
        continue_policy: match args.continue_policy {
            ContinueChoice::Never => ContinuePolicy::Never,
            ContinueChoice::Independent => ContinuePolicy::Independent,
        },
        poll: PollPolicy {
            first,
            max: Duration::from_secs(10).max(first),
            deadline_margin: Duration::from_secs(args.deadline_margin),
            after_terminate: Duration::from_secs(120),
            start_grace: Duration::from_secs(60),
        },
    }
}

async fn shutdown(target: Target) {
    if let Target::Sandbox(sim) = target {
        sim.shutdown().await;
    }
}

/// First Ctrl-C or SIGTERM: stop starting pushes. Second Ctrl-C: terminate running jobs.
/// Third: exit at once.
async fn listen_for_signals(interrupt: Interrupt, ctrl_c: Arc<AtomicBool>) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        #[cfg(unix)]
        let sigterm = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let sigterm = std::future::pending::<()>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                if r.is_err() {
                    return;
                }
                ctrl_c.store(true, Ordering::SeqCst);
                if interrupt.is_terminating() {
                    // A third Ctrl-C: leave now. The journal already holds every submitted
                    // job as in flight, so `--resume` follows them.
                    std::process::exit(i32::from(ExitStatus::Interrupted.code()));
                }
                interrupt.escalate();
            }
            () = sigterm => interrupt.stop(),
        }
    }
}

/// `[y/N]` on the terminal.
fn confirm(question: &str) -> bool {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

impl report::Out {
    fn start_error(&self, error: &StartError) {
        self.cannot_start(
            &error.to_string(),
            report::start_error_help(error).as_deref(),
        );
    }
}

#[cfg(test)]
mod tests {
    use plan_executor::PushStatus;

    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        let mut report = RunReport {
            run_id: "r".into(),
            plan: "p".into(),
            journal: "j".into(),
            resumed: false,
            pushes: vec![],
            interrupted: plan_executor::Interruption::None,
            duration: Duration::ZERO,
            journal_error: None,
        };
        assert_eq!(exit_status(&report), ExitStatus::Success);
        let push = |status| plan_executor::PushReport {
            name: "a".into(),
            stage: 1,
            status,
            job_instance_id: None,
            attempts: 1,
            hosts_total: 1,
            hosts_ok: 0,
            failed_hosts: vec![],
            succeeded_hosts: vec![],
            succeeded_hosts_unlisted: 0,
            duration: Duration::ZERO,
            error: None,
            error_code: None,
            hint: None,
            batches: Vec::new(),
            waiting: None,
            verification: None,
            attempt_log: Vec::new(),
        };
        report.pushes = vec![
            push(PushStatus::Succeeded),
            push(PushStatus::Disabled),
            push(PushStatus::UpToDate),
        ];
        assert_eq!(exit_status(&report), ExitStatus::Success);
        for failed in [
            PushStatus::Failed,
            PushStatus::Rejected,
            PushStatus::OutcomeUnknown,
            PushStatus::TimedOut,
            PushStatus::Blocked,
            PushStatus::NotStarted,
        ] {
            report.pushes = vec![push(PushStatus::Succeeded), push(failed)];
            assert_eq!(exit_status(&report), ExitStatus::PushFailed, "{failed:?}");
        }
        report.interrupted = plan_executor::Interruption::Stop;
        assert_eq!(exit_status(&report), ExitStatus::Interrupted);
        report.journal_error = Some("journal write failed: `j`: File too large".into());
        assert_eq!(exit_status(&report), ExitStatus::CannotStart);
    }

    /// `plan apply PLAN` with no flag runs with the defaults docs/apply.md documents, which
    /// are the executor's and the client's own (their tests assert how they behave).
    #[test]
    fn the_command_line_defaults_are_the_documented_ones() {
        use clap::Parser as _;

        let cli = crate::args::Cli::try_parse_from(["plan", "apply", "plan.toml"]).expect("args");
        let crate::args::Command::Apply(args) = cli.command else {
            panic!("not apply");
        };
        let documented = Options {
            parallelism: 8,
            schedule: Schedule::Stages,
            continue_policy: ContinuePolicy::Never,
            poll: PollPolicy {
                first: Duration::from_secs(1),
                max: Duration::from_secs(10),
                deadline_margin: Duration::from_secs(360),
                after_terminate: Duration::from_secs(120),
                start_grace: Duration::from_secs(60),
            },
        };
        assert_eq!(options(&args), documented);
        assert_eq!(options(&args), Options::default());
        assert_eq!(args.http_timeout, 70);
        // Retries: at most 6 attempts within 60 s (the client is built from its default).
        let retry = ClientConfig::default().retry;
        assert_eq!(
            (retry.max_attempts, retry.max_total),
            (6, Duration::from_secs(60))
        );
    }
}

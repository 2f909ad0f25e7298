//! The command line, as clap types. Flags and their meaning are a contract (docs: `design/cli.md`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative file distribution for BlueKing JOB.
///
/// Plans are TOML files kept in git. `plan check` validates them, `plan show` prints the dry run a
/// reviewer reads, `plan apply` runs them against BK-JOB stage by stage.
#[derive(Debug, Parser)]
#[command(name = "plan", version = env!("PLAN_BUILD_VERSION"), about, long_about = None, after_help = EXIT_CODES_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success (check: valid, warnings allowed)
  1    the plan is invalid; nothing was sent
  2    command-line usage error
  3    apply ran and at least one push failed
  4    apply could not start (lock held, endpoint unreachable, credentials missing, journal mismatch)
  10   diff --exit-code: the plan changes (0: unchanged, 1: a version is invalid)
  11   drift: some targets do not hold what the plan delivers (0: every one does)
  130  interrupted

Credentials come only from the environment: BK_APP_CODE, BK_APP_SECRET and one of
BK_USERNAME, BK_TOKEN, BK_ACCESS_TOKEN.";

/// Flags every command accepts.
#[derive(Debug, Args, Clone)]
pub(crate) struct GlobalArgs {
    /// Print less: only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more detail (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Never draw progress bars (plain lines instead).
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,
    /// When to use colours and fancy diagnostics (`NO_COLOR` is honoured by `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colours and fancy diagnostics on a terminal without `NO_COLOR`.
    Auto,
    /// Always.
    Always,
    /// Never: plain `file:line:col` diagnostics.
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse, validate and order plans; print every problem found.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// The dry run a reviewer reads: stages, pushes, why each waits, resolved hosts, request bodies.
    #[command(after_help = SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// The dependency graph, stages as clusters, inferred edges marked.
    #[command(after_help = GRAPH_EXAMPLES)]
    Graph(GraphArgs),
    /// What a change to a plan changes: pushes added, removed, changed; stage moves; edges.
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(DiffArgs),
    /// Run a plan: submit each push to BK-JOB, stage by stage, and follow every job to its end.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(Box<ApplyArgs>),
    /// Whether every target holds what the plan delivers (read through JOB, nothing sent):
    /// exit 0 when in place, 11 when not, listing the hosts and files.
    #[command(after_help = DRIFT_EXAMPLES)]
    Drift(DriftArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the JSON Schema of the plan format (for editors).
    #[command(after_help = SCHEMA_EXAMPLES)]
    Schema(SchemaArgs),
    /// A run from its journal: summary, timeline, per-host results and failed hosts' logs, as
    /// text, Markdown or one self-contained HTML page.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Turn BK-JOB job plans (执行方案) into a plan file: without --job-plan, list the
    /// business's job plans.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
}

// Each command's help ends with real command lines (a test parses every one of them).

const CHECK_EXAMPLES: &str = "\
Examples:
  plan check plans/*.toml
  plan check plan.toml --format github                # annotations in a GitHub Actions job
  plan check plan.toml --format junit > check.xml";

const SHOW_EXAMPLES: &str = "\
Examples:
  plan show plan.toml
  plan show plan.toml --format markdown > dry-run.md  # a pull-request comment
  plan show plan.toml --save reviewed.json            # then: plan apply reviewed.json";

const GRAPH_EXAMPLES: &str = "\
Examples:
  plan graph plan.toml | dot -Tsvg > plan.svg
  plan graph plan.toml --format mermaid";

const DIFF_EXAMPLES: &str = "\
Examples:
  plan diff plan.toml --base origin/main              # against the plan in git
  plan diff old.toml new.toml --format markdown
  plan diff plan.toml --base HEAD~1 --exit-code       # exit 10 when the plan changes";

const APPLY_EXAMPLES: &str = "\
Examples:
  plan apply examples/quickstart/plan.toml --sandbox examples/quickstart/sandbox
  plan apply reviewed.json --endpoint https://paas.example.com   # a plan saved by show --save
  plan apply plan.toml --sandbox sandbox/ --resume    # continue the last unfinished run";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  plan completions bash > ~/.local/share/bash-completion/completions/plan
  plan completions zsh > ~/.zfunc/_plan";

const SCHEMA_EXAMPLES: &str = "\
Examples:
  plan schema > plan.schema.json                      # for editors (taplo, VS Code)
  plan schema --output events                         # one line of apply --format json";

/// `--resolve` and where to resolve: the hosts behind dynamic groups and topology nodes,
/// asked of CMDB (`plan show`, `plan diff`); `--refresh`: what the targets hold, read with a
/// checksum script through JOB. Without either nothing is asked of anyone.
#[derive(Debug, Args, Clone, Default)]
#[command(group(clap::ArgGroup::new("asks").args(["resolve", "refresh"]).multiple(true)))]
pub(crate) struct ResolveArgs {
    /// List the hosts each push reaches: dynamic groups and topology nodes resolved through
    /// CMDB, at `--sandbox DIR` or `--endpoint URL` (or BK_JOB_ENDPOINT, with the credentials
    /// of `plan apply`).
    #[arg(long)]
    pub(crate) resolve: bool,
    /// Per push, whether its targets already hold what it delivers ("up to date", "N of M
    /// hosts differ" naming them, or "cannot tell" and why): one checksum script job per
    /// group of hosts through JOB, at `--sandbox DIR` or `--endpoint URL`. Nothing is sent.
    #[arg(long)]
    pub(crate) refresh: bool,
    /// Resolve (or refresh) against the embedded simulator's world at DIR.
    #[arg(
        long,
        value_name = "DIR",
        requires = "asks",
        conflicts_with = "endpoint"
    )]
    pub(crate) sandbox: Option<PathBuf>,
    /// Base URL of ESB or the API gateway (`.../api/bk-job/<stage>`; CMDB is asked beside
    /// it, `.../api/bk-cmdb/<stage>`), with `--resolve` or `--refresh`.
    #[arg(long, value_name = "URL", requires = "asks")]
    pub(crate) endpoint: Option<String>,
    /// Treat the endpoint as the API gateway; with `--sandbox`, use its gateway front door.
    #[arg(long, requires = "asks")]
    pub(crate) gateway: bool,
}

/// `--var NAME=VALUE`, shared by every command that reads a plan.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct VarArgs {
    /// Override a `[vars]` value (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub(crate) vars: Vec<(String, String)>,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            let name = name.trim();
            // The plan's own rule for variable names: any other name could never be used.
            let mut chars = name.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if valid {
                Ok((name.to_owned(), value.to_owned()))
            } else {
                Err(format!(
                    "`{name}` is not a variable name (letters, digits, `_` and `-`, not starting with a digit)"
                ))
            }
        }
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

/// `--expect`: a content hash, or a saved plan whose hash and pushes are expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// `sha256:<64 hex>`, lowercased.
    Hash(String),
    /// A saved plan file.
    Saved(PathBuf),
}

fn parse_expect(s: &str) -> Result<Expect, String> {
    if plan_graph::is_hash(s) {
        return Ok(Expect::Hash(s.to_ascii_lowercase()));
    }
    let path = PathBuf::from(s);
    if !s.starts_with(plan_graph::HASH_PREFIX) && path.is_file() {
        return Ok(Expect::Saved(path));
    }
    Err(format!(
        "`{s}` is not a content hash: expected `sha256:` and 64 hex digits, as `plan show` and `plan diff` print it (or the path of a saved plan)"
    ))
}

/// `--api v2|v3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ApiChoice {
    /// ESB `job/fast_push_file`.
    V2,
    /// `jobv3/fast_transfer_file` (ESB or API gateway).
    V3,
}

impl ApiChoice {
    pub(crate) fn to_api(self) -> plan_parser::Api {
        match self {
            ApiChoice::V2 => plan_parser::Api::V2,
            ApiChoice::V3 => plan_parser::Api::V3,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Plan files to check.
    #[arg(required = true, value_name = "PLAN")]
    pub(crate) plans: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Override `[plan] api` (v3-only keys are rejected under v2).
    #[arg(long, value_enum)]
    pub(crate) api: Option<ApiChoice>,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub(crate) format: CheckFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckFormat {
    /// Human-readable diagnostics on stderr.
    Text,
    /// `{"valid": bool, "diagnostics": [...]}` on stdout.
    Json,
    /// GitHub Actions annotations (`::error file=..,line=..::`) on stdout.
    Github,
    /// A GitLab Code Quality report (Code Climate JSON issues) on stdout.
    Codeclimate,
    /// A JUnit XML report on stdout: a test case per push, a failure per error.
    Junit,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Override `[plan] api`: which request bodies to print.
    #[arg(long, value_enum)]
    pub(crate) api: Option<ApiChoice>,
    #[arg(long, value_enum, default_value_t = ShowOutput::Text)]
    pub(crate) format: ShowOutput,
    /// Also write the resolved plan to FILE as a saved plan (JSON with its sources and its
    /// `sha256:` hash) that `plan apply FILE` applies exactly.
    #[arg(long, value_name = "FILE")]
    pub(crate) save: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) resolve: ResolveArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShowFormat {
    /// For a terminal.
    Text,
    /// The versioned JSON document.
    Json,
    /// A pull-request comment.
    Markdown,
}

/// `plan show --format`: the formats of `plan diff`, and JUnit XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShowOutput {
    /// For a terminal.
    Text,
    /// The versioned JSON document.
    Json,
    /// A pull-request comment.
    Markdown,
    /// JUnit XML for CI systems: a test case per push (skipped when disabled), a failure
    /// per error of an invalid plan.
    Junit,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub(crate) format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
    /// Nodes, edges and stages as JSON.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The old plan file (or, with `--base`, the plan file to compare with its git version).
    #[arg(value_name = "OLD")]
    pub(crate) old: PathBuf,
    /// The new plan file.
    #[arg(
        value_name = "NEW",
        required_unless_present = "base",
        conflicts_with = "base"
    )]
    pub(crate) new: Option<PathBuf>,
    /// Compare PLAN (and its includes) with their versions at this git revision.
    #[arg(long, value_name = "GIT_REV")]
    pub(crate) base: Option<String>,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Override `[plan] api` on both sides.
    #[arg(long, value_enum)]
    pub(crate) api: Option<ApiChoice>,
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub(crate) format: ShowFormat,
    /// Exit 10 when the plan changes, 0 when it does not; an invalid version is 1 and a
    /// usage error 2, as for every command.
    #[arg(long)]
    pub(crate) exit_code: bool,
    #[command(flatten)]
    pub(crate) resolve: ResolveArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The plan file, or a saved plan (`plan show PLAN --save FILE`), applied exactly without
    /// reading the TOML.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,
    /// Refuse, with nothing sent, unless the plan resolves to this content hash
    /// (`sha256:<64 hex>`, as `plan show` and `plan diff` print it), or to the hash of this
    /// saved plan file (then the pushes that differ are named).
    #[arg(long, value_name = "HASH|SAVED.json", value_parser = parse_expect)]
    pub(crate) expect: Option<Expect>,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Validate, connect and show what would be submitted, but submit nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Refresh first (a checksum script job per group of hosts) and push only to the targets
    /// that differ; a push whose every target is up to date is skipped. A plan already in
    /// place submits no transfer job and exits 0. With `--resume`, the refresh recorded for
    /// the run is used again (nothing is read twice; the narrowed pushes stay the same).
    #[arg(long)]
    pub(crate) converge: bool,
    /// With `--converge`: when the refresh itself fails (JOB refuses the script, a refresh
    /// job times out), push everything instead of stopping (exit 4).
    #[arg(long, requires = "converge")]
    pub(crate) converge_fallback: bool,
    /// Run against the embedded BK-JOB simulator serving the sandbox at DIR (no credentials needed).
    #[arg(long, value_name = "DIR", conflicts_with = "endpoint")]
    pub(crate) sandbox: Option<PathBuf>,
    /// Base URL of a real ESB (`https://paas.example.com`) or API gateway (`.../api/bk-job/<stage>`).
    #[arg(long, value_name = "URL", env = "BK_JOB_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// Treat the endpoint as the BlueKing API gateway (implied by a URL containing `/api/bk-job/`);
    /// with `--sandbox`, use the simulator's gateway front door.
    #[arg(long)]
    pub(crate) gateway: bool,
    /// Override `[plan] api`.
    #[arg(long, value_enum)]
    pub(crate) api: Option<ApiChoice>,
    /// Most JOB jobs in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) parallelism: u32,
    /// `stages` waits for a whole stage; `eager` starts a push once its own dependencies succeeded.
    #[arg(long, value_enum, default_value_t = ScheduleChoice::Stages)]
    pub(crate) schedule: ScheduleChoice,
    /// After a failure: `never` starts nothing new; `independent` runs what does not depend on it.
    #[arg(long = "continue", value_enum, default_value_t = ContinueChoice::Never)]
    pub(crate) continue_policy: ContinueChoice,
    /// Continue the last unfinished run of this plan from its journal (without one here, the
    /// run is found in JOB over v3 and its journal rebuilt).
    #[arg(long)]
    pub(crate) resume: bool,
    /// Start (or resume) although JOB shows another unfinished run of the plan, or refuses to
    /// list its jobs (recorded in the journal).
    #[arg(long)]
    pub(crate) force: bool,
    /// With `--resume`: approve PUSH where the run stopped for it (its gate, or JOB's rolling
    /// batch waiting for a confirmation); repeatable. Recorded in the journal with the OS user.
    #[arg(long, value_name = "PUSH", requires = "resume")]
    pub(crate) confirm: Vec<String>,
    /// First polling interval in milliseconds (then adaptive backoff).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub(crate) poll_interval: u64,
    /// Seconds past a push's timeout after which an unfinished job is terminated.
    #[arg(long, value_name = "S", default_value_t = 360)]
    pub(crate) deadline_margin: u64,
    /// Seconds to wait for one answer from JOB before the request counts as lost (a lost
    /// submission is never sent again blindly; a lost query is repeated).
    #[arg(long, value_name = "S", default_value_t = 70, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) http_timeout: u64,
    /// Also trust the CA certificate(s) in this PEM file (a private CA of an on-premise
    /// BlueKing); the public roots stay trusted.
    #[arg(long, value_name = "FILE", env = "BK_JOB_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Do not verify the endpoint's TLS certificate at all. Anyone on the network path can
    /// then read the credentials and change what JOB is asked to do; a warning says so on
    /// every run. Prefer `--ca-cert`.
    #[arg(long)]
    pub(crate) insecure_skip_tls_verify: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// Where journals and locks live [default: `.plan/` at the root of the git repository
    /// that holds the plan file, or beside the plan file outside git: one lock and one
    /// journal per plan, from whatever directory `apply` is run].
    #[arg(long, value_name = "DIR", env = "PLAN_STATE_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Progress and report format.
    #[arg(long, value_enum, default_value_t = ApplyFormat::Text)]
    pub(crate) format: ApplyFormat,
    /// Also write the run as JUnit XML to FILE, for CI systems that read it: one test case
    /// per push, a failed push a failure with its failed hosts.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
}

const DRIFT_EXAMPLES: &str = "\
Examples:
  plan drift plan.toml --sandbox sandbox/
  plan drift plan.toml --endpoint https://paas.example.com --format json
  plan show plan.toml --refresh --sandbox sandbox/     # the same beside the dry run
  plan apply plan.toml --converge --sandbox sandbox/   # push only what differs";

#[derive(Debug, Args)]
pub(crate) struct DriftArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Override `[plan] api`.
    #[arg(long, value_enum)]
    pub(crate) api: Option<ApiChoice>,
    /// Read the embedded simulator's world at DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "endpoint")]
    pub(crate) sandbox: Option<PathBuf>,
    /// Base URL of ESB or the API gateway (credentials as for `plan apply`).
    #[arg(long, value_name = "URL", env = "BK_JOB_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// Treat the endpoint as the API gateway; with `--sandbox`, use its gateway front door.
    #[arg(long)]
    pub(crate) gateway: bool,
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub(crate) format: ShowFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScheduleChoice {
    /// Stage N+1 starts when every push of stage N succeeded.
    Stages,
    /// A push starts when its own dependencies succeeded, longest remaining path first.
    Eager,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ContinueChoice {
    /// After a failure start nothing new (running jobs are followed to their end).
    Never,
    /// Keep running pushes that do not depend on a failed one.
    Independent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ApplyFormat {
    /// Progress and a report for people.
    Text,
    /// NDJSON events on stdout.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to generate a script for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Print the schema of an included file (only `[hosts]` and `[vars]`) instead.
    #[arg(long, conflicts_with = "output")]
    pub(crate) include_file: bool,
    /// Print the schema of a machine output instead (docs/outputs.md).
    #[arg(long, value_enum, value_name = "OUTPUT")]
    pub(crate) output: Option<OutputSchema>,
}

/// `plan schema --output`: the machine outputs whose JSON Schema is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputSchema {
    /// `plan show --format json`: the dry-run document.
    Show,
    /// `plan graph --format json`: stages, nodes and edges.
    Graph,
    /// `plan diff --format json`: what a change to a plan changes.
    Diff,
    /// `plan check --format json`: the document.
    Check,
    /// `plan apply --format json`: one NDJSON line.
    Events,
    /// One line of a run's journal (`.plan/runs/<plan>/<run-id>.jsonl`).
    Journal,
    /// A saved plan (`plan show PLAN --save FILE`).
    Saved,
}

const IMPORT_EXAMPLES: &str = "\
Examples:
  plan import --bk-biz-id 2 --endpoint https://paas.example.com     # list the job plans
  plan import --bk-biz-id 2 --job-plan 1001 -o plans/release.toml
  plan import --bk-biz-id 2 --job-plan 1001 --sandbox examples/import/sandbox";

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The business whose job plans are read.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) bk_biz_id: i64,
    /// A job plan to import, by id (repeatable: the plans go into one plan file, each keeping
    /// its own step order). Without it, the business's job plans are listed.
    #[arg(long = "job-plan", value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) job_plans: Vec<i64>,
    /// Write the plan file to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE", requires = "job_plans")]
    pub(crate) output: Option<PathBuf>,
    /// Read the job plans from the embedded simulator's world at DIR (its `jobsim.toml`).
    #[arg(long, value_name = "DIR", conflicts_with = "endpoint")]
    pub(crate) sandbox: Option<PathBuf>,
    /// Base URL of ESB or the API gateway (credentials as for `plan apply`).
    #[arg(long, value_name = "URL", env = "BK_JOB_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// Treat the endpoint as the API gateway; with `--sandbox`, use its gateway front door.
    #[arg(long)]
    pub(crate) gateway: bool,
}

const REPORT_EXAMPLES: &str = "\
Examples:
  plan report plan.toml                                # the plan's last run, for a terminal
  plan report plan.toml --format html -o report.html   # one page that opens from disk
  plan report plan.toml --run 20260101T120000.000Z-1a2b3c4d --format markdown";

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The plan file, or one run's journal (`.plan/runs/<plan>/<run-id>.jsonl`) [default:
    /// the one plan with runs in the state dir].
    #[arg(value_name = "PLAN")]
    pub(crate) plan: Option<PathBuf>,
    /// The run to report, by id (its journal's name; `plan apply` prints it) [default: the
    /// plan's last run].
    #[arg(long, value_name = "ID")]
    pub(crate) run: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Where the journals live [default: as for `plan apply`: `.plan/` at the root of the git
    /// repository that holds the plan file, or beside it].
    #[arg(long, value_name = "DIR", env = "PLAN_STATE_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// For a terminal (colours on a terminal only).
    Text,
    /// Tables and a text timeline, for a merge-request note or a wiki.
    Markdown,
    /// One self-contained page: inline CSS and SVG, no script, nothing fetched.
    Html,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::{Cli, parse_var};

    #[test]
    fn var_names_follow_the_plan_rule() {
        assert_eq!(
            parse_var("version=1.4=x"),
            Ok(("version".to_owned(), "1.4=x".to_owned()))
        );
        assert_eq!(parse_var("_a-b2="), Ok(("_a-b2".to_owned(), String::new())));
        for bad in ["1bad=x", "a b=x", "=x", "novalue", "${x}=y"] {
            assert!(parse_var(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The command lines under a help's `Examples:` heading, up to a pipe, a redirection
    /// or a comment.
    fn examples(help: &str) -> Vec<Vec<String>> {
        let Some((_, section)) = help.split_once("Examples:") else {
            return Vec::new();
        };
        section
            .lines()
            .filter_map(|line| line.trim().strip_prefix("plan "))
            .map(|line| {
                let line = line.split(" #").next().unwrap_or(line);
                let words = shlex::split(line).unwrap_or_else(|| panic!("cannot split `{line}`"));
                std::iter::once("plan".to_owned())
                    .chain(words.into_iter().take_while(|w| w != "|" && w != ">"))
                    .collect()
            })
            .collect()
    }

    /// Every command's `--help` ends with two or more examples, and each one parses.
    #[test]
    fn every_command_help_has_examples_that_parse() {
        let mut cli = Cli::command();
        cli.build();
        let commands: Vec<clap::Command> = cli
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .cloned()
            .collect();
        assert!(commands.len() >= 8, "{} commands", commands.len());
        for mut command in commands {
            let name = command.get_name().to_owned();
            let help = command.render_long_help().to_string();
            let examples = examples(&help);
            assert!(
                examples.len() >= 2,
                "`plan {name} --help` has no Examples section of two or more lines:\n{help}"
            );
            for example in examples {
                if let Err(e) = Cli::command().try_get_matches_from(&example) {
                    panic!("`{}` does not parse: {e}", example.join(" "));
                }
            }
        }
    }
}

//! Saved plans on the command line: `plan show PLAN --save FILE` writes one, `plan apply FILE`
//! applies one, and `plan apply PLAN --expect HASH|FILE` refuses a plan that resolves to
//! anything else. The document and its checks are `plan_graph::SavedPlan`'s; this module reads
//! and writes files and words the refusals (docs/team-workflow.md).
//!
//! A saved plan is applied from the source texts it embeds, parsed again exactly as they were
//! saved (with the saved `--var` and `--api`): the TOML on disk is never read. Before anything
//! is sent, the document must match its own digests, and the plan its texts parse to must have
//! the saved hash and the saved bodies.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use plan_graph::{Provenance, PushDifference, SavedOptions, SavedPlan, SavedPlanError, SavedVar};

use crate::args::{ApiChoice, Expect, VarArgs};
use crate::diagnostics::print_error;
use crate::exit::ExitStatus;
use crate::load::{Loaded, load_with};
use crate::printer::Printer;

/// What to do about a saved plan that cannot be applied.
const RESAVE_HELP: &str = "create it again from the reviewed plan with `plan show PLAN --save FILE` (a saved plan is applied only exactly as it was written)";

/// True when `path` names a saved plan rather than a TOML plan: a `.json` file, or a file
/// whose first character is `{` (which no TOML document starts with).
pub(crate) fn is_saved_plan(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
    {
        return true;
    }
    let mut head = [0u8; 64];
    let Ok(read) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
        return false;
    };
    let head = &head[..read];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// `plan show --save FILE`: writes the saved plan of `loaded`, read with these flags.
/// Written to a temporary file beside FILE and renamed, so a reader never sees half of it.
pub(crate) fn write(
    path: &Path,
    plan_file: &Path,
    loaded: &Loaded,
    vars: &VarArgs,
    api: Option<ApiChoice>,
) -> anyhow::Result<String> {
    let provenance = Provenance {
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tool_version: format!("plan {}", env!("CARGO_PKG_VERSION")),
        git_revision: git_revision(plan_file),
        options: SavedOptions {
            vars: vars
                .vars
                .iter()
                .map(|(name, value)| SavedVar {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            api: api.map(|api| api.to_api().as_str().to_owned()),
        },
    };
    // Never over the plan or one of its includes: the reviewed text would be lost.
    if let Ok(target) = path.canonicalize() {
        let plan = &loaded.parsed.plan;
        let overwritten = plan
            .sources
            .iter()
            .any(|(_, file)| Path::new(&file.name).canonicalize().ok() == Some(target.clone()));
        if overwritten || plan_file.canonicalize().ok() == Some(target) {
            anyhow::bail!(
                "`{}` is the plan or one of its includes; name another file",
                path.display()
            );
        }
    }
    let saved = SavedPlan::new(&loaded.parsed.plan, &loaded.graph, provenance);
    let mut text = serde_json::to_string_pretty(&saved)?;
    text.push('\n');
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    fs_err::write(&temporary, text)?;
    fs_err::rename(&temporary, path)?;
    Ok(saved.hash)
}

/// The commit checked out where the plan lives, when it lives in a git repository.
fn git_revision(plan_file: &Path) -> Option<String> {
    let dir = match plan_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let head = crate::git::git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]).ok()?;
    let head = head.trim();
    (!head.is_empty()).then(|| head.to_owned())
}

/// Reads, checks and parses again the saved plan at `path`. `Err` is the exit status after
/// the reason was printed: 1 for a file that cannot be applied (nothing is sent).
pub(crate) fn load(path: &Path, printer: &Printer) -> Result<(SavedPlan, Loaded), ExitStatus> {
    let refuse = |why: &dyn std::fmt::Display| {
        print_error(
            printer,
            &anyhow::anyhow!(
                "cannot apply saved plan `{}`: {why}; nothing was sent\n  help: {RESAVE_HELP}",
                path.display()
            ),
        );
        ExitStatus::Invalid
    };
    let bytes = read_bounded(path).map_err(|e| refuse(&e))?;
    let saved = SavedPlan::from_slice(&bytes).map_err(|e| match e {
        SavedPlanError::NewerVersion { .. } => {
            print_error(
                printer,
                &anyhow::anyhow!(
                    "cannot apply saved plan `{}`: {e}; nothing was sent\n  help: apply it with the `plan` that saved it, or save the plan again with this one",
                    path.display()
                ),
            );
            ExitStatus::Invalid
        }
        other => refuse(&other),
    })?;
    saved.check_integrity().map_err(|e| refuse(&e))?;
    let loaded = match load_with(saved.main_path(), &saved.loader(), &saved.parse_options()) {
        Ok(loaded) => loaded,
        Err(rejected) => {
            rejected.print(printer);
            return Err(refuse(
                &"its embedded plan no longer parses (saved by another version of plan?)",
            ));
        }
    };
    let differences = saved.compare(&loaded.parsed.plan, &loaded.graph);
    if !differences.is_empty() {
        return Err(refuse(&format!(
            "its embedded plan resolves to other requests than the saved ones ({})",
            listed(&differences)
        )));
    }
    if let Some(field) = saved.unreproduced_field(&loaded.parsed.plan, &loaded.graph) {
        let this = format!("plan {}", env!("CARGO_PKG_VERSION"));
        let why = if saved.tool_version == this {
            "it was changed after it was saved".to_owned()
        } else {
            format!(
                "it was saved by {}, and this is {this}: it was changed, or this version resolves it differently",
                saved.tool_version
            )
        };
        return Err(refuse(&format!(
            "its content does not match its hash: `{field}` is not what its embedded plan resolves to; {why}"
        )));
    }
    Ok((saved, loaded))
}

/// The file's bytes, refusing anything larger than a saved plan can be.
fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = fs_err::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(plan_graph::MAX_SAVED_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > plan_graph::MAX_SAVED_BYTES {
        anyhow::bail!(SavedPlanError::TooLarge {
            size: bytes.len() as u64
        });
    }
    Ok(bytes)
}

/// `--expect`: true when the plan resolves to the expected hash; otherwise says what differs
/// and what to do (exit 1, nothing sent).
pub(crate) fn expected(
    expect: &Expect,
    plan_arg: &Path,
    loaded: &Loaded,
    printer: &Printer,
) -> Result<(), ExitStatus> {
    let pushes = plan_graph::hashed_pushes(&loaded.parsed.plan, &loaded.graph);
    let actual = plan_graph::hash_of(&pushes);
    let (wanted, differences) = match expect {
        Expect::Hash(hash) => (hash.clone(), None),
        Expect::Saved(path) => {
            let (saved, _) = load(path, printer)?;
            let differences = plan_graph::compare_pushes(&saved.pushes, &pushes);
            (saved.hash, Some(differences))
        }
    };
    if wanted == actual {
        return Ok(());
    }
    let what = match differences {
        Some(differences) => format!("the pushes that differ: {}", listed(&differences)),
        None => "a hash alone does not say which pushes differ".to_owned(),
    };
    print_error(
        printer,
        &anyhow::anyhow!(
            "plan `{}` resolves to {actual}, not the expected {wanted}; nothing was sent\n  {what}\n  help: the plan, an include or a --var changed since the hash was taken: review `plan diff` (or `plan show {}`) and apply the new hash deliberately, or apply the reviewed saved plan with `plan apply SAVED.json`",
            loaded.parsed.plan.name.value,
            plan_arg.display()
        ),
    );
    Err(ExitStatus::Invalid)
}

/// `a: changed, b: added`, at most a screenful.
fn listed(differences: &[PushDifference]) -> String {
    const SHOWN: usize = 20;
    let mut text: Vec<String> = differences
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect();
    if differences.len() > SHOWN {
        text.push(format!("and {} more", differences.len() - SHOWN));
    }
    text.join(", ")
}

/// The plan `apply` runs: a saved plan's, or the TOML's; then `--expect`. `Err` is the exit
/// status, said already.
pub(crate) fn load_for_apply(
    plan: &Path,
    vars: &VarArgs,
    api: Option<ApiChoice>,
    expect: Option<&Expect>,
    printer: &Printer,
) -> Result<Loaded, ExitStatus> {
    let loaded = if is_saved_plan(plan) {
        if !vars.vars.is_empty() || api.is_some() {
            print_error(
                printer,
                &anyhow::anyhow!(
                    "`{}` is a saved plan: its variables and API were fixed when it was saved, so --var and --api cannot change them\n  help: drop --var/--api, or save the plan again with them (`plan show PLAN --var ... --save FILE`)",
                    plan.display()
                ),
            );
            return Err(ExitStatus::Usage);
        }
        load(plan, printer)?.1
    } else {
        crate::load::load_or_print(plan, vars, api, printer).ok_or(ExitStatus::Invalid)?
    };
    if let Some(expect) = expect {
        expected(expect, plan, &loaded, printer)?;
    }
    Ok(loaded)
}

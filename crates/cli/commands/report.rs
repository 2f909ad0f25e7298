//! `plan report`: a run of a plan, read back from its journal, as text, Markdown or one
//! self-contained HTML page (summary, timeline, host matrix, failed hosts' log tails).
//!
//! Which journal: a journal file given as PLAN; else the plan's runs in the state dir (the
//! last one, or `--run ID`); without PLAN, the only plan with runs in the state dir. The plan
//! itself, when it can be read, gives the stages (their boundaries on the timeline); a report
//! never needs JOB.

mod html;
mod markdown;
mod model;
#[cfg(test)]
mod tests;
mod text;
mod timeline;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use plan_parser::ParseOptions;

use crate::args::{ColorChoice, ReportArgs, ReportFormat};
use crate::exit::ExitStatus;
use crate::load::Loaded;
use crate::printer::{Printer, write_stdout};

use model::Run;

/// Run ids listed when `--run` names none of them.
const LISTED_RUNS: usize = 10;

pub(crate) fn run(args: &ReportArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let (journal, plan) = match find_journal(args, printer)? {
        Some(found) => found,
        None => return Ok(ExitStatus::Invalid),
    };
    let stages = plan
        .as_ref()
        .map(|p| stages_of(&p.graph))
        .unwrap_or_default();
    let mut run = Run::read(&journal, &stages)?;
    if let Some(plan) = &plan {
        hash_from_plan(&mut run, plan);
    }
    if !printer.quiet {
        print_notes(&journal, &run.notes);
    }
    let rendered = match args.format {
        ReportFormat::Text => text::render(&run, colour(args, printer)),
        ReportFormat::Markdown => markdown::render(&run),
        ReportFormat::Html => html::render(&run),
    };
    match &args.output {
        Some(path) => fs_err::write(path, rendered)?,
        None => write_stdout(&rendered)?,
    }
    Ok(ExitStatus::Success)
}

/// What reading did with lines it could not use, on stderr (the report repeats them at its
/// end, so a page handed on says it too).
fn print_notes(journal: &Path, notes: &[String]) {
    for note in notes {
        crate::printer::write_stderr(&format!("note: {}: {note}\n", journal.display()));
    }
}

/// Colours in the text report: `--color`, else only on a terminal without `NO_COLOR`.
fn colour(args: &ReportArgs, printer: &Printer) -> bool {
    match printer.color {
        ColorChoice::Auto if args.output.is_some() => false,
        _ => printer.stdout_colours(),
    }
}

/// The journal to report and the plan, when it reads; `None` when the plan given is invalid
/// (its problems printed).
fn find_journal(
    args: &ReportArgs,
    printer: &Printer,
) -> anyhow::Result<Option<(PathBuf, Option<Loaded>)>> {
    match &args.plan {
        Some(path) if is_journal(path) => {
            if args.run.is_some() {
                bail!(
                    "`--run` picks a run of a plan; `{}` is already one run's journal",
                    path.display()
                );
            }
            Ok(Some((path.clone(), plan_near(path))))
        }
        Some(plan_file) => {
            let Some(loaded) = crate::load::load_or_print(
                plan_file,
                &crate::args::VarArgs::default(),
                None,
                printer,
            ) else {
                return Ok(None);
            };
            let state_dir = match &args.state_dir {
                Some(dir) => dir.clone(),
                None => plan_executor::default_state_dir(plan_file).with_context(|| {
                    format!(
                        "cannot find where plan `{}` keeps its journals",
                        plan_file.display()
                    )
                })?,
            };
            let plan = &loaded.parsed.plan.name.value;
            let runs = plan_executor::runs_dir(&state_dir, plan);
            let journal = pick_run(&runs, plan, args.run.as_deref())?;
            Ok(Some((journal, Some(loaded))))
        }
        None => {
            let state_dir = match &args.state_dir {
                Some(dir) => dir.clone(),
                None => state_dir_here()?,
            };
            let (plan, runs) = only_plan(&state_dir)?;
            let journal = pick_run(&runs, &plan, args.run.as_deref())?;
            let plan = plan_near(&journal);
            Ok(Some((journal, plan)))
        }
    }
}

fn is_journal(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "jsonl")
}

/// `--run ID`'s journal, or the newest one with a line in it.
fn pick_run(runs: &Path, plan: &str, wanted: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut ids = run_ids(runs)?;
    if ids.is_empty() {
        bail!(
            "plan `{plan}` has no run in `{}`: nothing to report (runs are journaled there by `plan apply`; `--state-dir` reads another state dir)",
            runs.display()
        );
    }
    if let Some(id) = wanted {
        if ids.iter().any(|known| known == id) {
            return Ok(runs.join(format!("{id}.jsonl")));
        }
        ids.reverse();
        let more = ids.len().saturating_sub(LISTED_RUNS);
        ids.truncate(LISTED_RUNS);
        bail!(
            "plan `{plan}` has no run `{id}` in `{}`; its runs, newest first: {}{}",
            runs.display(),
            ids.join(", "),
            if more > 0 {
                format!(" (and {more} older)")
            } else {
                String::new()
            }
        );
    }
    // A journal without a byte is a run killed while writing its first line: passed over.
    while let Some(id) = ids.pop() {
        let path = runs.join(format!("{id}.jsonl"));
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            return Ok(path);
        }
    }
    bail!(
        "plan `{plan}` has only empty journals in `{}`: nothing to report",
        runs.display()
    )
}

/// Run ids (journal file stems) in `runs`, oldest first (ids sort by start time).
fn run_ids(runs: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(runs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list `{}`", runs.display())),
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| is_journal(p))
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    ids.sort();
    Ok(ids)
}

/// The state dir of a plan in this directory: `.plan/` at the root of the git work tree
/// holding it, else here (as `plan apply` chooses it for a plan file here).
fn state_dir_here() -> anyhow::Result<PathBuf> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let root = here
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&here);
    Ok(root.join(".plan"))
}

/// Without PLAN: the one plan that has runs in the state dir.
fn only_plan(state_dir: &Path) -> anyhow::Result<(String, PathBuf)> {
    let runs = state_dir.join("runs");
    let mut plans: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    plans.sort();
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match plans.as_slice() {
        [] => bail!(
            "no run journaled in `{}`: name the plan (`plan report PLAN`), or the state dir with `--state-dir`",
            runs.display()
        ),
        [one] => Ok((name(one), one.clone())),
        many => bail!(
            "several plans have runs in `{}` ({}): name the plan (`plan report PLAN`)",
            runs.display(),
            many.iter().map(name).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The plan a journal names (its `plan_file`, as given to `plan apply`, read from here or
/// from beside the state dir), when that file reads as a plan of the same name.
fn plan_near(journal: &Path) -> Option<Loaded> {
    let (plan_file, plan_name) = first_line_plan(journal)?;
    // STATE/runs/<plan>/<id>.jsonl: the state dir's parent is where apply usually ran.
    let beside_state = journal.ancestors().nth(4).map(|root| root.join(&plan_file));
    [Some(PathBuf::from(&plan_file)), beside_state]
        .into_iter()
        .flatten()
        .filter(|p| p.is_file())
        .filter_map(|p| crate::load::load(&p, &ParseOptions::default()).ok())
        .find(|loaded| loaded.parsed.plan.name.value == plan_name)
}

/// `run_started`'s `plan_file` and `plan`.
fn first_line_plan(journal: &Path) -> Option<(String, String)> {
    use std::io::{BufRead as _, Read as _};
    let file = std::fs::File::open(journal).ok()?;
    let mut first = String::new();
    // `run_started` lists every push's request hash (about 100 bytes a push): bounded well
    // above any plan's, never the whole file.
    std::io::BufReader::new(file)
        .take(64 * 1024 * 1024)
        .read_line(&mut first)
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(&first).ok()?;
    let text = |key: &str| Some(value.get(key)?.as_str()?.to_owned());
    Some((text("plan_file")?, text("plan")?))
}

/// The run's content hash when its journal does not hold one: the plan file's, when it
/// sends exactly the bodies the run journaled (else its hash now, said to differ).
fn hash_from_plan(run: &mut Run, loaded: &Loaded) {
    if run.plan_hash.is_some() {
        return;
    }
    let plan = &loaded.parsed.plan;
    // As `plan apply` journals them: the sha256 of each push's request body.
    let now: BTreeMap<String, String> = plan
        .pushes
        .iter()
        .map(|p| {
            let body = serde_json::to_vec(&plan_graph::request_for(plan, p)).unwrap_or_default();
            (p.name.value.clone(), plan_executor::sha256_hex(&body))
        })
        .collect();
    let hash = plan_graph::content_hash(plan, &loaded.graph);
    run.plan_hash = Some(if now == run.push_hashes {
        format!("{hash} (the plan file's, which sends the request bodies this run journaled)")
    } else {
        let differ = now
            .keys()
            .chain(run.push_hashes.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|name| now.get(*name) != run.push_hashes.get(*name))
            .count();
        format!(
            "not journaled; the plan file now sends other bodies for {differ} pushes (its hash now: {hash})"
        )
    });
}

fn stages_of(graph: &plan_graph::PlanGraph) -> BTreeMap<String, usize> {
    graph
        .stages()
        .iter()
        .flat_map(|s| s.pushes.iter().map(move |p| (p.clone(), s.number)))
        .collect()
}

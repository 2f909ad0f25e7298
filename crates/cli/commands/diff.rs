//! `plan diff OLD NEW` and `plan diff PLAN --base GIT_REV`: what a change to a plan changes.
//!
//! Both versions are parsed and ordered like `plan show` does, then compared by what they make
//! JOB do (`plan_graph::diff`). With `--base`, the old version of the plan and of every file
//! it includes is read from git (`git show REV:path`), so a change to an included inventory is
//! seen exactly as it will be after the merge. A plan that did not exist at REV is "every push
//! added".
//!
//! Exit 0 whether or not there are changes (1 when a version is invalid, 2 on a usage error);
//! `--exit-code` makes it 10 when there are changes: a code of its own, so CI tells "changed"
//! from "invalid" (`docs/outputs.md`).

use std::path::Path;

use plan_parser::{FsLoader, ParseOptions, SourceLoader};

use crate::args::{DiffArgs, ShowFormat};
use crate::diagnostics::print_error;
use crate::exit::ExitStatus;
use crate::git::GitLoader;
use crate::load::{Loaded, load_with, parse_options};
use crate::printer::{Printer, write_json, write_stdout};
use crate::render::diff_text::{Labels, scope_change};
use crate::render::{diff_markdown, diff_text, resolved};

pub(crate) fn run(args: &DiffArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let options = parse_options(&args.vars, args.api);
    let versions = match (&args.new, &args.base) {
        (Some(new), _) => two_files(&args.old, new, &options, printer),
        (None, Some(rev)) => against_git(&args.old, rev, &options, printer)?,
        (None, None) => {
            print_error(printer, &anyhow::anyhow!("give NEW or --base GIT_REV"));
            Err(ExitStatus::Usage)
        }
    };
    let Versions {
        old,
        new,
        mut labels,
    } = match versions {
        Ok(versions) => versions,
        Err(status) => return Ok(status),
    };
    labels.scope = scope_change(old.as_ref().map(|v| &v.parsed.plan), &new.parsed.plan);
    let diff = plan_graph::diff(old.as_ref().map(Loaded::diff_side), new.diff_side());
    let old_plan = old.as_ref().map(|v| &v.parsed.plan);
    let plans: Vec<&plan_parser::Plan> = old_plan.into_iter().chain([&new.parsed.plan]).collect();
    let resolution = match crate::commands::show::resolved(&args.resolve, printer, &plans) {
        Ok(resolution) => resolution,
        Err(status) => return Ok(status),
    };
    let hosts = resolution
        .as_ref()
        .map(|r| (r, resolved::changes(r, old_plan, &new.parsed.plan)));
    // `--refresh`: what the new version would move, read on its targets.
    let refreshed = match crate::commands::show::refreshed(&args.resolve, printer, &new.parsed.plan)
    {
        Ok(refreshed) => refreshed,
        Err(status) => return Ok(status),
    };
    match (args.format, &hosts) {
        (ShowFormat::Text, _) => {
            let mut text = diff_text::render(&diff, &labels);
            if let Some((r, changes)) = &hosts {
                text.push_str(&resolved::changes_text(r, changes));
            }
            if let Some(r) = &refreshed {
                text.push_str(&crate::refresh::text(r));
            }
            write_stdout(&text)?;
        }
        (ShowFormat::Json, None) if refreshed.is_none() => {
            write_json(&plan_graph::diff_json(&diff))?;
        }
        (ShowFormat::Json, hosts) => {
            let mut document = serde_json::to_value(plan_graph::diff_json(&diff))?;
            if let Some(fields) = document.as_object_mut() {
                if let Some((r, changes)) = hosts {
                    let changes = resolved::ResolvedChanges {
                        source: &r.source,
                        hosts: changes,
                    };
                    fields.insert("resolved".into(), serde_json::to_value(changes)?);
                }
                if let Some(r) = &refreshed {
                    fields.insert("refresh".into(), serde_json::to_value(r)?);
                }
            }
            write_json(&document)?;
        }
        (ShowFormat::Markdown, _) => {
            let mut text = diff_markdown::render(&diff, &new.parsed.plan, &new.graph, &labels);
            if let Some((r, changes)) = &hosts {
                text.push_str(&resolved::changes_markdown(r, changes));
            }
            if let Some(r) = &refreshed {
                text.push_str(&crate::refresh::markdown(r));
            }
            write_stdout(&text)?;
        }
    }
    Ok(if args.exit_code && diff.has_changes() {
        ExitStatus::Changed
    } else {
        ExitStatus::Success
    })
}

/// The two versions compared (no old one when the plan did not exist at the revision) and
/// what they are called; `Err` is the exit status when one cannot be had (said already).
struct Versions {
    old: Option<Loaded>,
    new: Loaded,
    labels: Labels,
}

/// `plan diff OLD NEW`: two files on disk.
fn two_files(
    old: &Path,
    new: &Path,
    options: &ParseOptions,
    printer: &Printer,
) -> Result<Versions, ExitStatus> {
    let old_version = load(old, &FsLoader, options, printer, "old").ok_or(ExitStatus::Invalid)?;
    let new_version = load(new, &FsLoader, options, printer, "new").ok_or(ExitStatus::Invalid)?;
    Ok(Versions {
        old: Some(old_version),
        new: new_version,
        labels: Labels {
            old: old.display().to_string(),
            new: new.display().to_string(),
            scope: None,
        },
    })
}

/// `plan diff PLAN --base REV`: the plan and its includes at REV against the work tree.
fn against_git(
    plan: &Path,
    rev: &str,
    options: &ParseOptions,
    printer: &Printer,
) -> anyhow::Result<Result<Versions, ExitStatus>> {
    // No repository or an unknown revision is a usage error (exit 2), like clap's.
    let git = match GitLoader::new(rev, plan) {
        Ok(git) => git,
        Err(error) => {
            print_error(printer, &error);
            return Ok(Err(ExitStatus::Usage));
        }
    };
    let labels = Labels {
        old: format!("{rev}:{}", git.repo_path(plan).unwrap_or_default()),
        new: plan.display().to_string(),
        scope: None,
    };
    let old = if git.exists(plan)? {
        match load(plan, &git, options, printer, rev) {
            Some(old) => Some(old),
            None => return Ok(Err(ExitStatus::Invalid)),
        }
    } else {
        None
    };
    let Some(new) = load(plan, &FsLoader, options, printer, "new") else {
        return Ok(Err(ExitStatus::Invalid));
    };
    Ok(Ok(Versions { old, new, labels }))
}

/// Parses and orders one version; on failure prints its problems, says which version it
/// was, and returns `None` (exit 1).
fn load(
    path: &Path,
    loader: &dyn SourceLoader,
    options: &ParseOptions,
    printer: &Printer,
    which: &str,
) -> Option<Loaded> {
    match load_with(path, loader, options) {
        Ok(loaded) => Some(loaded),
        Err(rejected) => {
            rejected.print(printer);
            print_error(
                printer,
                &anyhow::anyhow!(
                    "the {which} version of {} is invalid; fix it to see a diff",
                    path.display()
                ),
            );
            None
        }
    }
}

//! `plan show`: the dry run a reviewer reads.

use std::io::Write as _;

use crate::args::{ShowArgs, ShowOutput as ShowFormat};
use crate::ci_formats::{ShownPush, show_junit};
use crate::diagnostics::print_problems;
use crate::exit::ExitStatus;
use crate::load::{Loaded, load_or_print};
use crate::printer::{Printer, write_stdout};
use crate::render;

pub(crate) fn run(args: &ShowArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    if args.format == ShowFormat::Junit {
        return junit(args);
    }
    let Some(loaded) = load_or_print(&args.plan, &args.vars, args.api, printer) else {
        return Ok(ExitStatus::Invalid);
    };
    if let Some(path) = &args.save {
        let hash = crate::saved::write(path, &args.plan, &loaded, &args.vars, args.api)
            .map_err(|e| e.context(format!("cannot write the saved plan `{}`", path.display())))?;
        if !printer.quiet {
            say_saved(path, &hash);
        }
    }
    let resolution = match resolved(&args.resolve, printer, &[&loaded.parsed.plan]) {
        Ok(resolution) => resolution,
        Err(status) => return Ok(status),
    };
    let refreshed = match refreshed(&args.resolve, printer, &loaded.parsed.plan) {
        Ok(refreshed) => refreshed,
        Err(status) => return Ok(status),
    };
    let asked = Asked {
        resolution: resolution.as_ref(),
        refreshed: refreshed.as_ref(),
    };
    render(args, printer, loaded, &asked)
}

/// What was asked of the target: `--resolve`'s hosts, `--refresh`'s verdicts.
pub(crate) struct Asked<'a> {
    pub(crate) resolution: Option<&'a crate::resolve::Resolution>,
    pub(crate) refreshed: Option<&'a crate::refresh::Refreshed>,
}

/// `--refresh`: what the targets hold, read through JOB; `None` without it. `Err` is exit 4:
/// the target could not be opened or reached, or JOB refused the refresh (said).
pub(crate) fn refreshed(
    args: &crate::args::ResolveArgs,
    printer: &Printer,
    plan: &plan_parser::Plan,
) -> Result<Option<crate::refresh::Refreshed>, ExitStatus> {
    if !args.refresh {
        return Ok(None);
    }
    crate::refresh::refresh(args, plan).map(Some).map_err(|e| {
        crate::diagnostics::print_error(
            printer,
            &e.context("cannot refresh what the targets hold"),
        );
        ExitStatus::CannotStart
    })
}

/// `--resolve`: the plans' groups and nodes asked of CMDB; `None` without it (nothing is
/// asked of anyone). `Err` is exit 4: the target could not be opened or reached (said).
pub(crate) fn resolved(
    args: &crate::args::ResolveArgs,
    printer: &Printer,
    plans: &[&plan_parser::Plan],
) -> Result<Option<crate::resolve::Resolution>, ExitStatus> {
    if !args.resolve {
        return Ok(None);
    }
    crate::resolve::resolve(args, plans).map(Some).map_err(|e| {
        crate::diagnostics::print_error(printer, &e.context("cannot resolve hosts through CMDB"));
        ExitStatus::CannotStart
    })
}

/// One line on stderr, so stdout stays the plan in the asked format.
fn say_saved(path: &std::path::Path, hash: &str) {
    crate::printer::write_stderr(&format!(
        "saved {} ({hash}): `plan apply {}` applies exactly this\n",
        path.display(),
        path.display()
    ));
}

/// Prints the plan in the asked format.
fn render(
    args: &ShowArgs,
    printer: &Printer,
    loaded: Loaded,
    asked: &Asked<'_>,
) -> anyhow::Result<ExitStatus> {
    let resolution = asked.resolution;
    let Loaded {
        parsed,
        graph,
        warnings,
    } = loaded;
    let plan = &parsed.plan;
    let output = match (args.format, resolution) {
        (ShowFormat::Json, _) if resolution.is_some() || asked.refreshed.is_some() => {
            print_problems(printer, &plan.sources, &warnings);
            let mut document = Vec::new();
            plan_graph::write_show_json(plan, &graph, &parsed.warnings, &mut document)?;
            let mut document: serde_json::Value = serde_json::from_slice(&document)?;
            if let Some(fields) = document.as_object_mut() {
                if let Some(resolution) = resolution {
                    let resolved = render::resolved::document(resolution, plan);
                    fields.insert("resolved".into(), serde_json::to_value(resolved)?);
                }
                if let Some(refreshed) = asked.refreshed {
                    fields.insert("refresh".into(), serde_json::to_value(refreshed)?);
                }
            }
            crate::printer::write_json(&document)?;
            return Ok(ExitStatus::Success);
        }
        (ShowFormat::Text, _) => render::text::render(plan, &graph),
        (ShowFormat::Json, _) => {
            // Written as it is made: a dense plan's document is large.
            print_problems(printer, &plan.sources, &warnings);
            let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let written = plan_graph::write_show_json(plan, &graph, &parsed.warnings, &mut stdout)
                .and_then(|()| stdout.write_all(b"\n"))
                .and_then(|()| stdout.flush());
            return match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitStatus::Success),
                other => other.map(|()| ExitStatus::Success).map_err(Into::into),
            };
        }
        (ShowFormat::Markdown, _) => render::markdown::render(plan, &graph, &parsed.warnings),
        (ShowFormat::Junit, _) => unreachable!("written by `junit`"),
    };
    let output = match (args.format, resolution) {
        (ShowFormat::Text, Some(r)) => output + &render::resolved::text(r, plan),
        (ShowFormat::Markdown, Some(r)) => output + &render::resolved::markdown(r, plan),
        _ => output,
    };
    let output = match (args.format, asked.refreshed) {
        (ShowFormat::Text, Some(r)) => output + &crate::refresh::text(r),
        (ShowFormat::Markdown, Some(r)) => output + &crate::refresh::markdown(r),
        _ => output,
    };
    print_problems(printer, &plan.sources, &warnings);
    write_stdout(&output)?;
    Ok(ExitStatus::Success)
}

/// `--format junit`: the plan's pushes as test cases, or an invalid plan's errors as failures
/// at their place (exit 1, as for every format).
fn junit(args: &ShowArgs) -> anyhow::Result<ExitStatus> {
    let file = args.plan.display().to_string();
    let options = crate::load::parse_options(&args.vars, args.api);
    let (xml, status) = match crate::load::load(&args.plan, &options) {
        Ok(loaded) => {
            let plan = &loaded.parsed.plan;
            let pushes: Vec<ShownPush> = loaded
                .graph
                .stages()
                .iter()
                .flat_map(|stage| stage.pushes.iter().map(move |name| (stage.number, name)))
                .filter_map(|(stage, name)| plan.push(name).map(|push| (stage, push)))
                .map(|(stage, push)| ShownPush {
                    name: push.name.value.clone(),
                    summary: format!("stage {stage}, {}", render::target_hosts(push)),
                    enabled: push.enabled,
                })
                .collect();
            let warnings = crate::diagnostics::to_json(&plan.sources, &loaded.warnings);
            (show_junit(&file, &pushes, &warnings), ExitStatus::Success)
        }
        Err(rejected) => {
            let problems = crate::diagnostics::to_json(&rejected.sources, &rejected.problems);
            (show_junit(&file, &[], &problems), ExitStatus::Invalid)
        }
    };
    write_stdout(&xml)?;
    Ok(status)
}

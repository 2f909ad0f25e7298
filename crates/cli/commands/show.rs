//! `plan show`: the dry run a reviewer reads.

use std::io::Write as _;

use plan_graph::PlanGraph;
use plan_parser::{ParseOptions, Parsed, Problem};

use crate::args::{ApiChoice, ShowArgs, ShowFormat, VarArgs};
use crate::diagnostics::{print_plan_errors, print_problems};
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render;

pub(crate) fn run(args: &ShowArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let Some(Loaded {
        parsed,
        graph,
        warnings,
    }) = load(&args.plan, &args.vars, args.api, printer)
    else {
        return Ok(ExitStatus::Invalid);
    };
    let plan = &parsed.plan;
    let output = match args.format {
        ShowFormat::Text => render::text::render(plan, &graph),
        ShowFormat::Json => {
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
        ShowFormat::Markdown => render::markdown::render(plan, &graph, &parsed.warnings),
    };
    print_problems(printer, &plan.sources, &warnings);
    write_stdout(&output)?;
    Ok(ExitStatus::Success)
}

/// A plan that parsed and ordered, with every warning (parser and graph, sorted).
pub(crate) struct Loaded {
    pub(crate) parsed: Parsed,
    pub(crate) graph: PlanGraph,
    pub(crate) warnings: Vec<Problem>,
}

/// Parses and orders a plan; on failure prints every problem (parser warnings included) and
/// returns `None` (exit 1).
pub(crate) fn load(
    path: &std::path::Path,
    vars: &VarArgs,
    api: Option<ApiChoice>,
    printer: &Printer,
) -> Option<Loaded> {
    let options = ParseOptions {
        vars: vars.vars.clone(),
        api: api.map(ApiChoice::to_api),
    };
    let parsed = match plan_parser::parse_file(path, &options) {
        Ok(parsed) => parsed,
        Err(errors) => {
            print_plan_errors(printer, &errors);
            return None;
        }
    };
    match plan_graph::build(&parsed.plan) {
        Ok(graph) => {
            let mut warnings: Vec<Problem> = parsed
                .warnings
                .iter()
                .chain(graph.warnings())
                .cloned()
                .collect();
            plan_parser::sort_problems(&mut warnings);
            Some(Loaded {
                parsed,
                graph,
                warnings,
            })
        }
        Err(errors) => {
            let mut problems: Vec<Problem> = parsed.warnings.clone();
            problems.extend(errors.problems().iter().cloned());
            print_problems(printer, errors.sources(), &problems);
            None
        }
    }
}

/// Writes data to stdout; a closed pipe (`plan show | head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

//! `plan graph`: the dependency graph, stages as clusters, inferred edges marked.

use crate::args::{GraphArgs, GraphFormat};
use crate::diagnostics::print_problems;
use crate::exit::ExitStatus;
use crate::load::{Loaded, load_or_print};
use crate::printer::{Printer, write_json, write_stdout};

pub(crate) fn run(args: &GraphArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let Some(Loaded {
        parsed,
        graph,
        warnings,
    }) = load_or_print(&args.plan, &args.vars, None, printer)
    else {
        return Ok(ExitStatus::Invalid);
    };
    let plan = &parsed.plan;
    let output = match args.format {
        GraphFormat::Dot => plan_graph::dot(plan, &graph),
        GraphFormat::Mermaid => plan_graph::mermaid(plan, &graph),
        GraphFormat::Json => {
            print_problems(printer, &plan.sources, &warnings);
            write_json(&plan_graph::graph_json(plan, &graph))?;
            return Ok(ExitStatus::Success);
        }
    };
    print_problems(printer, &plan.sources, &warnings);
    write_stdout(&output)?;
    Ok(ExitStatus::Success)
}

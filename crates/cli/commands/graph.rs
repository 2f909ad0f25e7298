//! `plan graph`: the dependency graph, stages as clusters, inferred edges marked.

use crate::args::{GraphArgs, GraphFormat};
use crate::commands::show::{Loaded, load, write_stdout};
use crate::diagnostics::print_problems;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(args: &GraphArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let Some(Loaded {
        parsed,
        graph,
        warnings,
    }) = load(&args.plan, &args.vars, None, printer)
    else {
        return Ok(ExitStatus::Invalid);
    };
    let plan = &parsed.plan;
    let output = match args.format {
        GraphFormat::Dot => plan_graph::dot(plan, &graph),
        GraphFormat::Mermaid => plan_graph::mermaid(plan, &graph),
        GraphFormat::Json => {
            let mut text = serde_json::to_string_pretty(&plan_graph::graph_json(plan, &graph))?;
            text.push('\n');
            text
        }
    };
    print_problems(printer, &plan.sources, &warnings);
    write_stdout(&output)?;
    Ok(ExitStatus::Success)
}

//! `plan show`: the dry run a reviewer reads.

use std::io::Write as _;

use crate::args::{ShowArgs, ShowFormat};
use crate::diagnostics::print_problems;
use crate::exit::ExitStatus;
use crate::load::{Loaded, load_or_print};
use crate::printer::{Printer, write_stdout};
use crate::render;

pub(crate) fn run(args: &ShowArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let Some(Loaded {
        parsed,
        graph,
        warnings,
    }) = load_or_print(&args.plan, &args.vars, args.api, printer)
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

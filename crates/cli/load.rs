//! The one load pipeline every command runs: parse the plan (and its includes) through a
//! [`SourceLoader`], order it, and merge the parser's and the graph's warnings.
//!
//! `check` keeps a rejected plan's problems to report them; `show`, `graph`, `apply` and
//! `diff` print them and stop with exit 1.

use std::path::Path;

use plan_graph::{DiffSide, PlanGraph};
use plan_parser::{FsLoader, ParseOptions, Parsed, Problem, SourceFiles, SourceLoader};

use crate::args::{ApiChoice, VarArgs};
use crate::diagnostics::print_problems;
use crate::printer::Printer;

/// A plan that parsed and ordered, with every warning (parser and graph, sorted).
pub(crate) struct Loaded {
    pub(crate) parsed: Parsed,
    pub(crate) graph: PlanGraph,
    pub(crate) warnings: Vec<Problem>,
}

impl Loaded {
    /// This version as one side of `plan diff` (only the parser's warnings: the graph's are
    /// recomputed by the diff).
    pub(crate) fn diff_side(&self) -> DiffSide<'_> {
        DiffSide {
            plan: &self.parsed.plan,
            graph: &self.graph,
            warnings: &self.parsed.warnings,
        }
    }
}

/// A plan that did not parse or order: every problem found (the parser's warnings included
/// when the graph refused it) and the sources they point into.
pub(crate) struct Rejected {
    pub(crate) sources: SourceFiles,
    pub(crate) problems: Vec<Problem>,
}

impl Rejected {
    /// Prints every problem the way the printer wants them.
    pub(crate) fn print(&self, printer: &Printer) {
        print_problems(printer, &self.sources, &self.problems);
    }
}

/// The parser's options from the flags every plan-reading command shares.
pub(crate) fn parse_options(vars: &VarArgs, api: Option<ApiChoice>) -> ParseOptions {
    ParseOptions {
        vars: vars.vars.clone(),
        api: api.map(ApiChoice::to_api),
    }
}

/// Parses `path` from disk and orders it.
pub(crate) fn load(path: &Path, options: &ParseOptions) -> Result<Loaded, Rejected> {
    load_with(path, &FsLoader, options)
}

/// Parses `path` (and its includes) through `loader` and orders it.
pub(crate) fn load_with(
    path: &Path,
    loader: &dyn SourceLoader,
    options: &ParseOptions,
) -> Result<Loaded, Rejected> {
    let parsed = plan_parser::parse_with(path, loader, options).map_err(|errors| Rejected {
        sources: errors.sources().clone(),
        problems: errors.problems().to_vec(),
    })?;
    // The graph rules (ordering, cycles, write conflicts) only run on a valid model.
    match plan_graph::build(&parsed.plan) {
        Ok(graph) => {
            let warnings = sorted(parsed.warnings.iter().chain(graph.warnings()));
            Ok(Loaded {
                parsed,
                graph,
                warnings,
            })
        }
        Err(errors) => Err(Rejected {
            sources: errors.sources().clone(),
            problems: sorted(parsed.warnings.iter().chain(errors.problems())),
        }),
    }
}

/// [`load`] with the shared flags; a rejected plan's problems are printed and `None` returned
/// (the command exits 1).
pub(crate) fn load_or_print(
    path: &Path,
    vars: &VarArgs,
    api: Option<ApiChoice>,
    printer: &Printer,
) -> Option<Loaded> {
    load(path, &parse_options(vars, api))
        .map_err(|rejected| rejected.print(printer))
        .ok()
}

fn sorted<'p>(problems: impl Iterator<Item = &'p Problem>) -> Vec<Problem> {
    let mut problems: Vec<Problem> = problems.cloned().collect();
    plan_parser::sort_problems(&mut problems);
    problems
}

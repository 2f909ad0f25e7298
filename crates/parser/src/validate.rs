//! Walks the spanned TOML tree into the model, collecting every problem.

use std::path::Path;

use crate::model::SourceFiles;
use crate::{ParseOptions, Parsed, PlanErrors, Problem, SourceLoader};

pub(crate) fn parse(
    path: &Path,
    loader: &dyn SourceLoader,
    _options: &ParseOptions,
) -> Result<Parsed, PlanErrors> {
    let mut sources = SourceFiles::default();
    let text = loader.load(path).unwrap_or_default();
    sources.add(path.display().to_string(), text);
    Err(PlanErrors::new(
        sources,
        vec![Problem::error(
            "plan::parser::unimplemented",
            "not implemented yet",
        )],
    ))
}

//! `plan drift`: whether every target holds what the plan delivers, read through JOB and
//! nothing sent; exit 0 when it does, 11 when some do not (a scheduled CI job alerts on it).

use crate::args::{DriftArgs, ResolveArgs, ShowFormat};
use crate::diagnostics::print_problems;
use crate::exit::ExitStatus;
use crate::load::load_or_print;
use crate::printer::{Printer, write_stdout};

pub(crate) fn run(args: &DriftArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let Some(loaded) = load_or_print(&args.plan, &args.vars, args.api, printer) else {
        return Ok(ExitStatus::Invalid);
    };
    let plan = &loaded.parsed.plan;
    print_problems(printer, &plan.sources, &loaded.warnings);
    let target = ResolveArgs {
        resolve: false,
        refresh: true,
        sandbox: args.sandbox.clone(),
        endpoint: args.endpoint.clone(),
        gateway: args.gateway,
    };
    let refreshed = match crate::refresh::refresh(&target, plan) {
        Ok(refreshed) => refreshed,
        Err(e) => {
            crate::diagnostics::print_error(
                printer,
                &e.context("cannot refresh what the targets hold"),
            );
            return Ok(ExitStatus::CannotStart);
        }
    };
    let in_place = refreshed.refresh.in_place();
    match args.format {
        ShowFormat::Json => crate::printer::write_json(&serde_json::json!({
            "format_version": 1,
            "plan": plan.name.value,
            "in_place": in_place,
            "refresh": refreshed,
        }))?,
        ShowFormat::Text => {
            let verdict = if in_place {
                format!("plan {}: in place", plan.name.value)
            } else {
                format!(
                    "plan {}: drift: some targets do not hold what the plan delivers",
                    plan.name.value
                )
            };
            write_stdout(&(verdict + "\n" + &crate::refresh::text(&refreshed)))?;
        }
        ShowFormat::Markdown => write_stdout(&crate::refresh::markdown(&refreshed))?,
    }
    Ok(if in_place {
        ExitStatus::Success
    } else {
        ExitStatus::Drift
    })
}

//! Any bytes, as a plan, through what `plan check` and `plan show` do: parse, build the graph
//! (ordering, cycles, write conflicts), render every diagnostic, and for a valid graph build
//! every request body and the dry-run renderings. None of it may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plan_parser::{ParseOptions, PlanErrors, parse_str};

fn render(errors: &PlanErrors) {
    assert!(!errors.problems().is_empty());
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    let _ = handler.render_report(&mut out, errors);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_str("fuzz/corpus/plan_check/plan.toml", text, &ParseOptions::default())
    else {
        return;
    };
    match plan_graph::build(&parsed.plan) {
        Ok(graph) => {
            let plan = &parsed.plan;
            for report in plan_parser::reports(&plan.sources, graph.warnings()) {
                let _ = format!("{report:?}");
            }
            for push in &plan.pushes {
                let _ = plan_graph::request_for(plan, push);
            }
            let _ = plan_graph::show_json(plan, &graph, &parsed.warnings);
            let _ = plan_graph::dot(plan, &graph);
            let _ = plan_graph::mermaid(plan, &graph);
            let _ = plan_graph::graph_json(plan, &graph);
        }
        Err(errors) => render(&errors),
    }
});

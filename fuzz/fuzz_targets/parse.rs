//! Any bytes, as a plan: parsing and rendering every diagnostic must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plan_parser::{ParseOptions, parse_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Relative includes resolve next to the seed corpus, which holds no includes of its own.
    match parse_str("fuzz/corpus/parse/plan.toml", text, &ParseOptions::default()) {
        Ok(parsed) => {
            for report in plan_parser::reports(&parsed.plan.sources, &parsed.warnings) {
                let _ = format!("{report:?}");
            }
        }
        Err(errors) => {
            assert!(!errors.problems().is_empty());
            let mut out = String::new();
            let handler = miette::GraphicalReportHandler::new_themed(
                miette::GraphicalTheme::unicode_nocolor(),
            );
            let _ = handler.render_report(&mut out, &errors);
        }
    }
});

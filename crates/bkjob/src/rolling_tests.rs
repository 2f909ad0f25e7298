//! JOB's own cases for its rolling expression (bk-job `engine/rolling/*Test.java`), then the
//! edges of Java's parsing that decide what JOB accepts.

use super::*;
use RollingExprPart::{MultiplyIncrement, Percent, PlusIncrement, Quantity};

fn parts(text: &str) -> Vec<RollingExprPart> {
    RollingExpr::parse(text).expect(text).parts().collect()
}

fn sizes(text: &str, total: usize) -> Vec<usize> {
    RollingExpr::parse(text)
        .expect(text)
        .batch_sizes(total)
        .expect(text)
}

fn refused(text: &str) -> RollingExprError {
    RollingExpr::parse(text).expect_err(text)
}

// QuantityRollingExprPartTest, PercentRollingExprPartTest, PlusIncrementRollingExprPartTest,
// ExponentIncrementRollingExprPartTest: parseInvalidExpr / parseValidExpr.

#[test]
fn job_quantity_parts() {
    assert_eq!(parts("1"), [Quantity(1)]);
    assert_eq!(parts("100"), [Quantity(100)]);
    assert!(matches!(refused("0"), RollingExprError::OutOfRange { .. }));
    for bad in ["test", "-1"] {
        assert!(
            matches!(refused(bad), RollingExprError::InvalidPart { .. }),
            "{bad}"
        );
    }
}

#[test]
fn job_percent_parts() {
    assert_eq!(parts("1%"), [Percent(1)]);
    assert_eq!(parts("100%"), [Percent(100)]);
    for bad in ["0%", "101%"] {
        assert!(
            matches!(refused(bad), RollingExprError::OutOfRange { .. }),
            "{bad}"
        );
    }
    assert!(matches!(
        refused("2.0%"),
        RollingExprError::InvalidPart { .. }
    ));
}

#[test]
fn job_increment_parts() {
    assert_eq!(parts("+10"), [PlusIncrement(10)]);
    assert_eq!(parts("+100"), [PlusIncrement(100)]);
    assert_eq!(parts("*2"), [MultiplyIncrement(2)]);
    for bad in ["+0", "*0"] {
        assert!(
            matches!(refused(bad), RollingExprError::OutOfRange { .. }),
            "{bad}"
        );
    }
}

// The part compute() cases.

#[test]
fn job_part_compute() {
    // QuantityRollingExprPartTest.compute: "2" then "10" over 5 hosts.
    assert_eq!(Quantity(2).batch_size(5, None).min(5), 2);
    assert_eq!(Quantity(10).batch_size(5, None).min(5), 5);
    // PercentRollingExprPartTest: 100% of 3 is 3; 10%, 20%, 30% of 5 round up to 1, 1, 2.
    assert_eq!(Percent(100).batch_size(3, None), 3);
    assert_eq!(Percent(10).batch_size(5, None), 1);
    assert_eq!(Percent(20).batch_size(5, None), 1);
    assert_eq!(Percent(30).batch_size(5, None), 2);
    // Plus/Exponent compute: after a batch of 1, "+3" takes 4 (of the 4 left), "*3" takes 3.
    assert_eq!(PlusIncrement(3).batch_size(5, Some(1)).min(4), 4);
    assert_eq!(MultiplyIncrement(3).batch_size(5, Some(1)).min(4), 3);
}

// RollingExprTest: nextRollingExprPart.

#[test]
fn job_part_for_each_batch() {
    let one = RollingExpr::parse("1").expect("1");
    assert_eq!(one.part_for_batch(1), Quantity(1));
    assert_eq!(one.part_for_batch(2), Quantity(1));
    let three = RollingExpr::parse("1 2 3").expect("1 2 3");
    let by_batch: Vec<_> = (1..=4).map(|b| three.part_for_batch(b)).collect();
    assert_eq!(
        by_batch,
        [Quantity(1), Quantity(2), Quantity(3), Quantity(3)]
    );
    let percent = RollingExpr::parse("10% 20%").expect("10% 20%");
    let by_batch: Vec<_> = (1..=3).map(|b| percent.part_for_batch(b)).collect();
    assert_eq!(by_batch, [Percent(10), Percent(20), Percent(20)]);
    let mixed = RollingExpr::parse("1 10%").expect("1 10%");
    let by_batch: Vec<_> = (1..=3).map(|b| mixed.part_for_batch(b)).collect();
    assert_eq!(by_batch, [Quantity(1), Percent(10), Percent(10)]);
    let rest = RollingExpr::parse("1 100%").expect("1 100%");
    assert_eq!(rest.part_for_batch(2), Percent(100));
}

// RollingExecuteObjectBatchResolverTest.

#[test]
fn job_resolver_cases() {
    assert_eq!(sizes("25%", 16), [4, 4, 4, 4]);
    assert_eq!(sizes("10% 30%", 16), [2, 5, 5, 4]);
    assert_eq!(sizes("10", 16), [10, 6]);
    assert_eq!(sizes("1 5", 16), [1, 5, 5, 5]);
    assert_eq!(sizes("1 30%", 15), [1, 5, 5, 4]);
    assert_eq!(sizes("1 30% 100%", 16), [1, 5, 10]);
}

#[test]
fn job_resolver_refuses_more_than_500_batches() {
    let one = RollingExpr::parse("1").expect("1");
    assert_eq!(one.batch_sizes(1000), Err(TooManyBatches { total: 1000 }));
    // JOB checks before opening a batch, so 501 batches still pass and the 502nd fails.
    assert_eq!(one.batch_sizes(501).map(|s| s.len()), Ok(501));
    assert!(one.batch_sizes(502).is_err());
}

#[test]
fn job_resolver_performance_cases() {
    assert_eq!(sizes("500", 50_000).len(), 100);
    assert_eq!(sizes("1%", 50_000).len(), 100);
    assert_eq!(sizes("+10", 50_000).len(), 100);
    // "*2": 2, 4, 8, ... until 50000 hosts are covered.
    let doubling = sizes("*2", 50_000);
    assert_eq!(doubling.len(), 15);
    assert_eq!(doubling.iter().sum::<usize>(), 50_000);
}

// Java's parsing: what JOB accepts beyond its own tests.

#[test]
fn the_issue_example_over_twenty_hosts() {
    assert_eq!(sizes("1 30% 100%", 20), [1, 6, 13]);
    assert_eq!(sizes("5 +2", 20), [5, 7, 8]);
    assert_eq!(sizes("10%", 0), Vec::<usize>::new());
}

#[test]
fn spaces_are_split_as_java_splits_them() {
    // Trailing spaces are dropped by split; leading ones and doubled ones make an empty part.
    assert_eq!(parts("1 2 "), [Quantity(1), Quantity(2)]);
    assert_eq!(parts("1 2   "), [Quantity(1), Quantity(2)]);
    let leading = refused(" 1");
    assert_eq!(leading.span(), 0..1);
    let doubled = refused("1  2");
    assert_eq!(doubled.span(), 1..2);
    // Tabs do not split, but trim() strips them at a part's ends.
    assert_eq!(parts("\t1\t 2"), [Quantity(1), Quantity(2)]);
    assert!(matches!(
        refused("1\t2"),
        RollingExprError::InvalidPart { .. }
    ));
    // A part of only control characters is empty after trim().
    assert_eq!(refused("1 \t").span(), 2..3);
}

#[test]
fn blank_is_refused_before_parsing() {
    for blank in ["", " ", "   ", "\t\n"] {
        assert_eq!(
            RollingExpr::parse(blank),
            Err(RollingExprError::Blank),
            "{blank:?}"
        );
    }
    assert_eq!(RollingExprError::Blank.job_code(), crate::code::BAD_REQUEST);
}

#[test]
fn java_dollar_allows_one_final_line_terminator() {
    assert_eq!(parts("1\u{2028}"), [Quantity(1)]);
    assert_eq!(
        parts("10%\u{85} +2\u{2029}"),
        [Percent(10), PlusIncrement(2)]
    );
    assert!(refused("1\u{2028}\u{2028}").span() == (0..7));
    assert!(matches!(
        refused("\u{2028}"),
        RollingExprError::InvalidPart { .. }
    ));
}

#[test]
fn digits_are_ascii_and_leading_zeros_count() {
    assert_eq!(
        parts("007 +01 *02 050%"),
        [
            Quantity(7),
            PlusIncrement(1),
            MultiplyIncrement(2),
            Percent(50)
        ]
    );
    // Arabic-Indic digits are not `\d` in Java without UNICODE_CHARACTER_CLASS.
    assert!(matches!(
        refused("\u{663}"),
        RollingExprError::InvalidPart { .. }
    ));
    for bad in [
        "+", "*", "%", "++1", "+-1", "1%%", "%1", "1.5", "1e3", "+1%", "*1%",
    ] {
        assert!(
            matches!(refused(bad), RollingExprError::InvalidPart { .. }),
            "{bad}"
        );
    }
}

#[test]
fn numbers_beyond_java_int_fail_as_job_fails() {
    assert_eq!(parts("2147483647"), [Quantity(2_147_483_647)]);
    let big = refused("1 2147483648");
    assert_eq!(big.span(), 2..12);
    assert_eq!(big.job_code(), crate::code::INTERNAL_ERROR);
    // The out-of-range check is on the parsed number, so a big percentage is too large first.
    assert!(matches!(
        refused("99999999999%"),
        RollingExprError::NumberTooLarge { .. }
    ));
}

#[test]
fn errors_point_at_the_part() {
    let err = refused("1 30% 0 100%");
    assert_eq!(err.span(), 6..7);
    assert_eq!(err.job_code(), crate::code::INVALID_ROLLING_EXPR);
    assert!(err.to_string().contains("`0`"), "{err}");
    let expr = RollingExpr::parse("  1 ").err();
    assert_eq!(expr.map(|e| e.span()), Some(0..1));
}

#[test]
fn display_is_the_canonical_text() {
    let expr = RollingExpr::parse("\t01 30%  ".trim_end()).expect("parses");
    assert_eq!(expr.to_string(), "1 30%");
    assert_eq!(expr.span_of(1), Some(4..7));
}

#[test]
fn batch_sizes_never_exceed_the_hosts() {
    for text in ["1", "7", "33%", "+3", "*2", "1 30% 100%", "2 +1 *3"] {
        let expr = RollingExpr::parse(text).expect(text);
        for total in 0..200 {
            let Ok(batches) = expr.batch_sizes(total) else {
                continue;
            };
            assert_eq!(batches.iter().sum::<usize>(), total, "{text} over {total}");
            assert!(batches.iter().all(|&b| b > 0), "{text} over {total}");
        }
    }
}

#[test]
fn rolling_mode_is_a_number_on_the_wire() {
    let config = RollingConfigV3 {
        mode: Some(RollingMode::Manual),
        expression: Some("1 100%".into()),
        ..RollingConfigV3::default()
    };
    let json = serde_json::to_value(&config).expect("serialises");
    assert_eq!(json, serde_json::json!({"mode": 3, "expression": "1 100%"}));
    let back: RollingConfigV3 = serde_json::from_value(json).expect("parses");
    assert_eq!(back, config);
    assert!(serde_json::from_value::<RollingConfigV3>(serde_json::json!({"mode": 4})).is_err());
    let sources = RollingConfigV3 {
        rolling_type: Some(rolling_type::FILE_SOURCE),
        file_source: Some(FileSourceRollingConfigV3 {
            max_execute_object_num_in_batch: Some(2),
            max_file_num_of_single_execute_object: Some(10),
        }),
        ..RollingConfigV3::default()
    };
    assert_eq!(
        serde_json::to_value(&sources).expect("serialises"),
        serde_json::json!({"type": 2, "file_source": {
            "max_execute_object_num_in_batch": 2,
            "max_file_num_of_single_execute_object": 10
        }})
    );
}

proptest::proptest! {
    /// Any text: parsing never panics, an error's span lies within the text on character
    /// boundaries, and an accepted expression's batches cover every host exactly once.
    #[test]
    fn any_text_parses_or_fails_cleanly(text in "[ 0-9%+*\\t\\u{2028}a.-]{0,24}", total in 0usize..3000) {
        match RollingExpr::parse(&text) {
            Ok(expr) => {
                if let Ok(sizes) = expr.batch_sizes(total) {
                    proptest::prop_assert_eq!(sizes.iter().sum::<usize>(), total);
                    proptest::prop_assert!(sizes.len() <= MAX_ALLOWED_ROLLING_BATCH_SIZE + 1);
                }
            }
            Err(e) => {
                let span = e.span();
                proptest::prop_assert!(span.end <= text.len());
                proptest::prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
            }
        }
    }
}

// FileSourceBatchCalculatorTest: batches of source files (hosts, file_list entries).

fn source_batches(sources: &[(usize, usize)], hosts: i32, files: i32) -> Vec<Vec<SourceSlice>> {
    let config = FileSourceRollingConfigV3 {
        max_execute_object_num_in_batch: Some(hosts),
        max_file_num_of_single_execute_object: Some(files),
    };
    file_source_batches(sources, &config)
}

#[test]
fn job_file_source_batch_counts() {
    assert!(source_batches(&[], 1, 1).is_empty());
    // One host and one file per batch: 1 + 2 × 2.
    assert_eq!(source_batches(&[(1, 1), (2, 2)], 1, 1).len(), 5);
    assert_eq!(source_batches(&[(3, 1)], 2, 1).len(), 2);
    assert_eq!(source_batches(&[(1, 3)], 1, 2).len(), 2);
    assert_eq!(source_batches(&[(1, 1), (1, 1), (1, 1)], 3, 3).len(), 1);
    assert_eq!(source_batches(&[(3, 3)], i32::MAX, i32::MAX).len(), 1);
    // Split by hosts (2), merged (1), split by files (2).
    assert_eq!(
        source_batches(&[(4, 1), (1, 1), (1, 1), (1, 3)], 2, 2).len(),
        5
    );
    // 10 hosts in groups of 3 (4) × 10 files in groups of 4 (3).
    assert_eq!(source_batches(&[(10, 10)], 3, 4).len(), 12);
    // Each at its limit: not split, but together over it: not merged.
    assert_eq!(source_batches(&[(2, 1), (1, 2)], 2, 2).len(), 2);
    assert_eq!(source_batches(&[(1, 1); 5], 3, 3).len(), 2);
    assert_eq!(source_batches(&[(2, 3), (3, 2)], 2, 2).len(), 4);
}

#[test]
fn file_source_batches_name_their_hosts_and_files() {
    let batches = source_batches(&[(3, 2), (1, 1), (1, 1)], 2, 2);
    let slice = |source, hosts, files| SourceSlice {
        source,
        hosts,
        files,
    };
    assert_eq!(
        batches,
        [
            vec![slice(0, 0..2, 0..2)],
            vec![slice(0, 2..3, 0..2)],
            vec![slice(1, 0..1, 0..1), slice(2, 0..1, 0..1)],
        ]
    );
    // No limits (absent or not positive): one batch of everything.
    let unlimited = file_source_batches(
        &[(5, 7), (9, 9)],
        &FileSourceRollingConfigV3 {
            max_execute_object_num_in_batch: None,
            max_file_num_of_single_execute_object: Some(0),
        },
    );
    assert_eq!(unlimited.len(), 1);
}

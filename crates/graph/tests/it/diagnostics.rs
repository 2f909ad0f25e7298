//! What users see for cycles and write conflicts: one snapshot per fixture.

use crate::{parse, render};

fn graph_failure(path: &str) -> String {
    let parsed = parse(path).unwrap_or_else(|e| panic!("{path} must parse: {}", render(&e)));
    match plan_graph::build(&parsed.plan) {
        Ok(_) => panic!("{path} must fail to order"),
        Err(errors) => render(&errors),
    }
}

#[test]
fn cycle_explicit() {
    insta::assert_snapshot!(graph_failure("cycle-explicit.toml"));
}

#[test]
fn cycle_inferred() {
    insta::assert_snapshot!(graph_failure("cycle-inferred.toml"));
}

#[test]
fn cycle_mixed() {
    insta::assert_snapshot!(graph_failure("cycle-mixed.toml"));
}

#[test]
fn self_dependency_inferred() {
    insta::assert_snapshot!(graph_failure("self-inferred.toml"));
}

#[test]
fn write_conflict() {
    insta::assert_snapshot!(graph_failure("conflict.toml"));
}

#[test]
fn write_conflict_dynamic_group() {
    insta::assert_snapshot!(graph_failure("conflict-dynamic.toml"));
}

//! Every diagnostic code the graph reports, as one enumerated list: [`GraphErrorKind`].
//!
//! Problems are built from a kind, never from a code spelled in place; `docs/diagnostics.md`
//! is generated from [`GraphErrorKind::ALL`]. Codes are a stable contract: add a kind, never
//! rename one.

/// What a graph diagnostic is about; [`GraphErrorKind::code`] is its stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GraphErrorKind {
    /// Pushes depend on each other in a cycle, through `after` or what they read and write.
    Cycle,
    /// A push depends on itself: it lists itself in `after`, or reads what it delivers.
    SelfDependency,
    /// A push runs after a push the plan does not have.
    UnknownDependency,
    /// Two pushes write the same file on the same host and nothing orders them.
    WriteConflict,
    /// A push reads what a disabled push delivers.
    ReadsDisabled,
    /// The write-conflict check stopped at its budget; conflicts were not checked.
    ConflictsUnchecked,
}

impl GraphErrorKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: &[GraphErrorKind] = &[
        GraphErrorKind::Cycle,
        GraphErrorKind::SelfDependency,
        GraphErrorKind::UnknownDependency,
        GraphErrorKind::WriteConflict,
        GraphErrorKind::ReadsDisabled,
        GraphErrorKind::ConflictsUnchecked,
    ];

    /// The stable code, e.g. `plan::graph::cycle`.
    pub const fn code(self) -> &'static str {
        match self {
            GraphErrorKind::Cycle => "plan::graph::cycle",
            GraphErrorKind::SelfDependency => "plan::graph::self_dependency",
            GraphErrorKind::UnknownDependency => "plan::graph::unknown_dependency",
            GraphErrorKind::WriteConflict => "plan::graph::write_conflict",
            GraphErrorKind::ReadsDisabled => "plan::graph::reads_disabled",
            GraphErrorKind::ConflictsUnchecked => "plan::graph::conflicts_unchecked",
        }
    }

    /// What the code means, in one line.
    pub const fn meaning(self) -> &'static str {
        match self {
            GraphErrorKind::Cycle => {
                "Pushes depend on each other in a cycle, through `after` or what they read and write."
            }
            GraphErrorKind::SelfDependency => {
                "A push depends on itself: it lists itself in `after`, or reads what it delivers."
            }
            GraphErrorKind::UnknownDependency => "A push runs after a push the plan does not have.",
            GraphErrorKind::WriteConflict => {
                "Two pushes write the same file on the same host and nothing orders them."
            }
            GraphErrorKind::ReadsDisabled => "A push reads what a disabled push delivers.",
            GraphErrorKind::ConflictsUnchecked => {
                "The write-conflict check stopped at its budget; conflicts were not checked."
            }
        }
    }
}

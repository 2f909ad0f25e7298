//! Limits JOB's request validation enforces on a file push, as its code has them (its docs
//! say otherwise in places; `docs/plan-format.md` lists where).

/// The smallest `timeout` JOB accepts, in seconds (`JobConstants.MIN_JOB_TIMEOUT_SECONDS`;
/// below it: "Job timeout must be greater or equal than 1", `1240003`).
pub const TIMEOUT_MIN_SECONDS: u32 = 1;

/// The largest `timeout` JOB accepts by default, in seconds: 3 days
/// (`JobConstants.MAX_JOB_TIMEOUT_SECONDS`; v3 lets an operator change it per scope, v2's
/// `@Range` is fixed). The API docs say 86400 (v3: "1-86400", ESB v2: "60-86400").
pub const TIMEOUT_MAX_SECONDS: u32 = 259_200;

/// The `timeout` JOB applies when a request has none, in seconds.
pub const TIMEOUT_DEFAULT_SECONDS: u32 = 7_200;

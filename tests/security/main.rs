//! The security suite: hostile servers in front of `jobsim`, hostile plans, attacks on `jobsim`
//! itself and journals cut at every line. Every output, journal, lock and report is searched
//! for canary credentials; every request is checked to reach only the configured endpoint.
//! The threat model and the matrix these tests prove are in docs/reliability.md.

#[path = "../e2e/server.rs"]
#[allow(dead_code)]
mod server;

mod hostile_cmdb;
mod hostile_journal;
mod hostile_server;
mod jobsim_escape;
mod journal_cut;
mod plans;

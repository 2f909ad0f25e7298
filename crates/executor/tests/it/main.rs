//! The executor against `jobsim` over HTTP (real client, real transfers between sandbox
//! directories): ordering, failures, retries, deadlines, interrupts, journal and resume.

mod apply;
mod confirm;
mod defaults;
mod exactly_once;
mod polls;
mod resume;
mod run_visibility;
mod schedule;
mod schemas;
mod support;
mod two_phase;
mod v2_batches;

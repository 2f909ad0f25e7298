//! end-to-end tests
mod apply;
mod apply_resume;
mod apply_v3;
mod check;
mod diff;
mod exit_codes;
mod faults;
mod fleets;
mod load;
mod mutation;
mod run_visibility;
mod sandbox_restart;
mod schema;
mod secrets;
mod server;
mod show;
mod tls;

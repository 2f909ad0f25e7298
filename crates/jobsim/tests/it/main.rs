//! Integration tests of the simulator: validation tables, the status machine on a paused
//! clock, real transfers, concurrency, both front doors' auth and faults, and the binary.

mod auth;
mod concurrency;
mod confinement;
mod exposure;
mod faults;
mod fleets;
mod fuzz;
mod instance_list;
mod job_plans;
mod memory;
mod persist;
mod python;
mod rolling;
mod script;
mod server;
mod state;
mod support;
mod transfer;
mod validation;
mod wire;

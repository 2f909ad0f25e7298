//! end-to-end tests
mod diff;
mod schema;
mod show;

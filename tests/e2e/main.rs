//! end-to-end tests
mod diff;
mod show;

//! end-to-end tests
mod show;

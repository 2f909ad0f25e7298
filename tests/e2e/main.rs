//! end-to-end tests
mod apply;
mod apply_resume;
mod diff;
mod schema;
mod show;

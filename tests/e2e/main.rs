//! end-to-end tests
mod apply;
mod apply_resume;
mod check;
mod diff;
mod schema;
mod show;

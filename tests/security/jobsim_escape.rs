//! Attacks on `jobsim`: names, `file_target_name`, directories and symlinks that try to leave a
//! host's root, and oversized bodies.

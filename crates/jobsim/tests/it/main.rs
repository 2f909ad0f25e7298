//! jobsim integration tests

//! Hostile plans: includes that reach outside the repository or into special files, and inputs
//! sized to make planning quadratic, exhaust memory or overflow the stack.

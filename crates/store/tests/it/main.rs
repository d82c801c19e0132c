//! The store's integration tests, one binary: the conformance suite every backend runs.

mod conformance;

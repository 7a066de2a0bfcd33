//! Repository rules that would otherwise live only in ARCHITECTURE.md and drift: the tests in
//! `tests/` read `cargo metadata` and the source tree and fail when a rule is broken.
//!
//! The library itself is empty on purpose; the crate exists so the rules run with every
//! `cargo nextest run --workspace`.

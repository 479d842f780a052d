//! The plugin host, end to end, with components written in WAT (`tests/fixtures`): what
//! the registry accepts and refuses, what calls return, how each misbehaviour is stopped,
//! and that the host keeps serving afterwards.

mod cache;
mod calls;
mod concurrency;
mod misbehaviour;
mod registry;
mod support;

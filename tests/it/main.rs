//! Waystation's integration tests: one binary, one module per feature, compiled once.

mod api;
mod cli;
mod golden;
mod scenarios;

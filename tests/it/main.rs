//! Waystation's integration tests: one binary, one module per feature, compiled once.

mod cli;
mod golden;
mod scenarios;

//! Waystation's integration tests: one binary, one module per feature, compiled once.

mod api;
mod cli;
mod crash;
mod durability;
mod golden;
mod migrate;
mod outbox;
mod playbooks;
mod scenarios;

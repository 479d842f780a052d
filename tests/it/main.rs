//! Waystation's integration tests: one binary, one module per feature, compiled once.

mod api;
mod cli;
mod crash;
mod duties;
mod durability;
mod golden;
mod hostile_definitions;
mod hostile_requests;
mod identity;
mod migrate;
mod outbox;
mod playbooks;
mod scenarios;

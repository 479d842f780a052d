//! Waystation's integration tests: one binary, one module per feature, compiled once.

mod api;
mod cli;
mod crash;
mod durability;
mod duties;
mod golden;
mod hostile_definitions;
mod hostile_requests;
mod identity;
mod migrate;
mod outbox;
mod playbooks;
mod postmortem;
mod reports;
mod scenarios;

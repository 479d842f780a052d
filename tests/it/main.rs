//! Waystation's integration tests: one binary, one module per feature, compiled once.

mod api;
mod cli;
mod cluster;
mod contract;
mod crash;
mod durability;
mod duties;
mod hostile_definitions;
mod hostile_requests;
mod identity;
mod ladders;
mod live;
mod migrate;
mod outbox;
mod parallel;
mod playbooks;
mod postmortem;
mod precheck;
mod progress;
mod reports;
mod retry;
mod schedules;
mod stalled_clients;
mod subworkflows;
mod who_did_what;

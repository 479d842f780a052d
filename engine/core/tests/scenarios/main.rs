//! Playbook scenarios driven through the pure core with a fake clock and fake plugins.

mod approval_flow;
mod delay_early_warning;
mod delay_emergency_response;
mod dispute_handling;
mod order_quick_response;
mod payment_precheck;
mod samples;
mod semantics;

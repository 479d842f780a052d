//! Loop until quiet: apply an input, run each requested plugin call through a
//! [`PluginInvoker`], feed its result back, until the instance rests. All effects of the
//! whole loop come back together, for one atomic commit.

use crate::effect::Effect;
use crate::input::{CallMetrics, Input};
use crate::machine::{apply, start, Rejection, Step};
use crate::plugin::{CallOutcome, PluginInvoker};
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Instant;

/// How many plugin calls one command may make before the driver stops it (a guard
/// against a definition that calls plugins in a loop of task stages).
pub const MAX_PLUGIN_CALLS_PER_COMMAND: usize = 64;

/// Starts an instance and runs it until it rests.
///
/// # Errors
/// As [`start`].
pub fn start_until_quiet(
    workflow: &Workflow,
    id: String,
    input: Value,
    now: DateTime<Utc>,
    plugins: &dyn PluginInvoker,
) -> Result<Step, Rejection> {
    let step = start(workflow, id, input, now)?;
    Ok(settle(workflow, step, now, plugins))
}

/// Applies `input` and runs the instance until it rests.
///
/// # Errors
/// As [`apply`], for the first input only: plugin results are always accepted.
pub fn apply_until_quiet(
    workflow: &Workflow,
    state: crate::state::InstanceState,
    input: Input,
    now: DateTime<Utc>,
    plugins: &dyn PluginInvoker,
) -> Result<Step, Rejection> {
    let step = apply(workflow, state, input, now)?;
    Ok(settle(workflow, step, now, plugins))
}

fn settle(
    workflow: &Workflow,
    mut step: Step,
    now: DateTime<Utc>,
    plugins: &dyn PluginInvoker,
) -> Step {
    let mut all = Vec::new();
    let mut calls = 0;
    loop {
        let call = match step
            .effects
            .iter()
            .position(|e| matches!(e, Effect::CallPlugin(_)))
        {
            Some(i) => match step.effects.remove(i) {
                Effect::CallPlugin(c) => Some(c),
                _ => unreachable!(),
            },
            None => None,
        };
        all.append(&mut step.effects);
        let Some(call) = call else {
            step.effects = all;
            return step;
        };
        calls += 1;
        let began = Instant::now();
        let reported = if calls > MAX_PLUGIN_CALLS_PER_COMMAND {
            CallOutcome {
                result: Err(crate::plugin::PluginFailure {
                    kind: crate::plugin::FailureKind::PluginError,
                    message: format!(
                        "more than {MAX_PLUGIN_CALLS_PER_COMMAND} plugin calls in one command"
                    ),
                }),
                logs: Vec::new(),
                input_digest: None,
            }
        } else {
            plugins.invoke_reported(&call.plugin, call.world, &call.input)
        };
        let outcome = reported.result;
        let metrics = CallMetrics {
            duration_us: Some(u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX)),
            input_digest: reported.input_digest,
            logs: reported.logs,
            ..CallMetrics::default()
        };
        let input = Input::PluginResult {
            call_id: call.call_id,
            outcome,
            metrics,
        };
        step = apply(workflow, step.state, input, now)
            .expect("the machine accepts the result of the call it requested");
    }
}

//! The plugin seam. `core` never runs a plugin: it asks for a call as an
//! [`Effect::CallPlugin`](crate::Effect::CallPlugin) and receives the result as an
//! [`Input::PluginResult`](crate::Input::PluginResult). These types name plugins, their
//! worlds, and the two traits the outside implements: a catalog (what exists, for
//! validation) and an invoker (run a call, for drivers and tests).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The plugin worlds of the `waystation:plugin` WIT package that definitions can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum World {
    /// JSON in, a score with reasons and labels out. Used by `call` actions.
    Scorer,
    /// JSON in, messages to deliver out. Used by `notify` actions.
    Notifier,
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Scorer => "scorer",
            World::Notifier => "notifier",
        })
    }
}

/// A plugin as a definition names it: the newest version of `name`, or one pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PluginRef {
    /// Registered plugin name.
    pub name: String,
    /// Hex SHA-256 of the component bytes, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl PluginRef {
    /// Parses `name` or `name@sha256:<64 lowercase hex>`.
    ///
    /// # Errors
    /// A message saying which part is malformed.
    pub fn parse(text: &str) -> Result<PluginRef, String> {
        let (name, digest) = match text.split_once('@') {
            None => (text, None),
            Some((name, pin)) => {
                let hex = pin.strip_prefix("sha256:").ok_or_else(|| {
                    format!(
                        "plugin reference '{text}': a pin must look like @sha256:<64 hex digits>"
                    )
                })?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(format!(
                        "plugin reference '{text}': the digest must be 64 lowercase hex digits"
                    ));
                }
                (name, Some(hex.to_owned()))
            }
        };
        let valid_name = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(format!(
                "plugin reference '{text}': a plugin name is lowercase letters, digits and '-'"
            ));
        }
        Ok(PluginRef {
            name: name.to_owned(),
            digest,
        })
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{}@sha256:{d}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What validation may ask about plugins: does this reference resolve, and to which world?
///
/// `Sync` because validation runs on a thread of its own (see [`crate::Workflow::from_value`]).
pub trait PluginCatalog: Sync {
    /// The world of the plugin `reference` resolves to, or `None` when nothing matches.
    fn world_of(&self, reference: &PluginRef) -> Option<World>;
}

/// How a plugin call failed. Each kind is something an operator can act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The plugin ran past its time budget.
    Timeout,
    /// The plugin tried to grow its memory past its cap.
    OutOfMemory,
    /// The plugin trapped (panic, unreachable, failed assertion).
    Trap,
    /// The plugin returned something the contract does not allow, or too much of it.
    BadOutput,
    /// The plugin returned an error of its own.
    PluginError,
    /// No plugin matches the reference, or it does not implement the world.
    NotFound,
}

impl FailureKind {
    /// The name the history and the API use (`out_of_memory`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::Trap => "trap",
            FailureKind::BadOutput => "bad_output",
            FailureKind::PluginError => "plugin_error",
            FailureKind::NotFound => "not_found",
        }
    }
}

/// A failed plugin call, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The details (the guest's own message for traps).
    pub message: String,
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// Runs plugin calls for a driver. The wasmtime host implements it; tests use fakes.
pub trait PluginInvoker {
    /// Calls `plugin` (implementing `world`) with `input`, returning its JSON output.
    ///
    /// # Errors
    /// A [`PluginFailure`] describing why the call produced no usable output.
    fn invoke(
        &self,
        plugin: &PluginRef,
        world: World,
        input: &Value,
    ) -> Result<Value, PluginFailure>;

    /// As [`PluginInvoker::invoke`], with what the call left for the instance history:
    /// the guest's log lines and a digest of the input. Hosts that have them override
    /// this; the default reports none.
    fn invoke_reported(&self, plugin: &PluginRef, world: World, input: &Value) -> CallOutcome {
        CallOutcome {
            result: self.invoke(plugin, world, input),
            logs: Vec::new(),
            input_digest: None,
        }
    }
}

/// A plugin call's result together with what it leaves in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// The output, or why there is none.
    pub result: Result<Value, PluginFailure>,
    /// The guest's log lines, as `level: message`.
    pub logs: Vec<String>,
    /// Hex SHA-256 of the JSON input the plugin received.
    pub input_digest: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_by_name_or_pinned_digest() {
        assert_eq!(PluginRef::parse("order-priority").unwrap().digest, None);
        let pinned = format!("order-priority@sha256:{}", "ab".repeat(32));
        let r = PluginRef::parse(&pinned).unwrap();
        assert_eq!(r.to_string(), pinned);
        assert!(PluginRef::parse("order-priority@md5:abc").is_err());
        assert!(PluginRef::parse("Order Priority").is_err());
    }

    #[test]
    fn a_failure_kind_is_named_as_serde_writes_it() {
        use FailureKind as K;
        for kind in [
            K::Timeout,
            K::OutOfMemory,
            K::Trap,
            K::BadOutput,
            K::PluginError,
            K::NotFound,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }
}

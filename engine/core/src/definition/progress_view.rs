//! The `progress` member of a definition: what a customer's progress link may show. Apart
//! from the `progress` module, which builds the page and needs the definition, so that the
//! definition can hold this member without naming the module that uses it.

use serde::{Deserialize, Serialize};

/// The `progress` member of a definition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressView {
    /// The page's heading (default: the workflow's title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Show the business key (the order number the customer already knows).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key: bool,
    /// Fields shown with their titles, in this order (a promised delivery date, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The stages listed as steps, in this order (default: every stage that is not an end
    /// stage). A stage not listed is never named: while the order is there the page says
    /// only that it is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
}

//! Figures per workflow and period (issue 15), read from the store's rollups: a report
//! reads the 15-minute buckets of the periods asked for, never the instances.

use crate::{Runtime, RuntimeError};
use std::collections::BTreeMap;
use waystation_core::definition::FieldType;
use waystation_core::report::{BuildError, Builder, Row, Span, MAX_ROWS};
use waystation_core::Workflow;
use waystation_store::StoreError;

/// How a report groups its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportBy {
    /// One row per period.
    Nothing,
    /// One row per period and value of a keyword field of the definition.
    Field(String),
    /// One row per period; stage figures merged per owner role (`(none)` for stages
    /// without one).
    Role,
}

/// Why a grouping is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a keyword field of the workflow; group by field.<keyword field> or role")]
pub struct NotAKeywordField(pub String);

impl ReportBy {
    /// `field.<name>` (a keyword field of `wf`), `role`, or nothing.
    ///
    /// # Errors
    /// Anything else, or a field that is not a keyword field of `wf`.
    pub fn parse(by: Option<&str>, wf: &Workflow) -> Result<ReportBy, NotAKeywordField> {
        let Some(by) = by else {
            return Ok(ReportBy::Nothing);
        };
        if by == "role" {
            return Ok(ReportBy::Role);
        }
        let name = by
            .strip_prefix("field.")
            .ok_or_else(|| NotAKeywordField(by.to_owned()))?;
        let keyword = wf
            .definition
            .fields
            .iter()
            .any(|(n, f)| n == name && f.kind == FieldType::Keyword);
        if keyword {
            Ok(ReportBy::Field(name.to_owned()))
        } else {
            Err(NotAKeywordField(name.to_owned()))
        }
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// It would have more than [`MAX_ROWS`] rows (periods times groups); the read stopped
    /// there.
    #[error("the report would have more than {MAX_ROWS} rows (periods x groups)")]
    TooManyRows,
    /// The store failed, or a rollup cell is unreadable.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl Runtime {
    /// The figures of `wf` for `spans`, grouped `by`. Reads the store: call it from the
    /// blocking pool.
    ///
    /// # Errors
    /// [`ReportError::TooManyRows`] past [`MAX_ROWS`] rows (the read stops there: a
    /// grouping by a field of many values costs no more than that); store errors and
    /// unreadable rollup cells.
    pub fn report(
        &self,
        wf: &Workflow,
        spans: Vec<Span>,
        by: &ReportBy,
    ) -> Result<Vec<Row>, ReportError> {
        let stages: Vec<(String, Option<String>)> = wf
            .definition
            .stages
            .iter()
            .map(|(name, s)| (name.clone(), s.owner.clone()))
            .collect();
        let (rename, order) = match by {
            ReportBy::Role => {
                let rename: BTreeMap<String, String> = stages
                    .iter()
                    .map(|(n, o)| (n.clone(), o.clone().unwrap_or_else(|| "(none)".into())))
                    .collect();
                // Roles in the order their first stage has in the definition.
                let mut order: Vec<String> = Vec::new();
                for (stage, _) in &stages {
                    let role = &rename[stage];
                    if !order.contains(role) {
                        order.push(role.clone());
                    }
                }
                (Some(rename), order)
            }
            _ => (None, stages.into_iter().map(|(n, _)| n).collect()),
        };
        let dim = match by {
            ReportBy::Field(f) => f.as_str(),
            _ => "",
        };
        let mut builder = Builder::new(spans, matches!(by, ReportBy::Field(_)), rename, order);
        let range = builder.bucket_range();
        let mut too_many = false;
        let read = self.store.report_cells(
            &wf.definition.id,
            dim,
            range,
            &mut |bucket, group, figure, cell| {
                builder.add(bucket, group, figure, cell).map_err(|e| {
                    too_many = e == BuildError::TooManyRows;
                    StoreError::Corrupt(e.to_string())
                })
            },
        );
        match read {
            Err(_) if too_many => Err(ReportError::TooManyRows),
            Err(e) => Err(RuntimeError::from(e).into()),
            Ok(()) => Ok(builder.rows()),
        }
    }
}

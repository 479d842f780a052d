//! Figures per workflow and period (issue 15): what each change of an instance adds to the
//! reports ([`deltas`]), the mergeable cells they are kept in ([`Cell`]), the periods a
//! caller asks for in a time zone ([`spans`]) and the figures read from merged cells
//! ([`Builder`], [`Row`]).
//!
//! The store keeps one cell per workflow, group, 15-minute UTC bucket and figure, updated
//! in the same atomic batch as the change that moves it; a report merges the buckets of
//! each requested period. Figure names:
//!
//! | figure | kind | bucket |
//! | --- | --- | --- |
//! | `started`, `running`, `tag/{tag}` | count | when the instance started (cohort) |
//! | `ended/{status}`, `outcome/{outcome}` | count | when it ended |
//! | `cycle` | durations | when it ended |
//! | `num/{field}` | number summary | when it ended (the field's value then) |
//! | `stage/{s}/entered`, `stage/{s}/left` | count | when the visit began / ended |
//! | `stage/{s}/time` | durations | when the visit ended |
//! | `stage/{s}/response` | durations | when the first action happened |
//! | `stage/{s}/at_risk`, `stage/{s}/breached` | count | when it went at risk / breached |

mod cell;
mod delta;
mod figures;
mod period;
mod postmortem;

pub use cell::{Cell, CellError, Numbers, RELATIVE_ERROR};
pub use chrono_tz::Tz;
pub use delta::{
    bucket, deltas, group_refs, groups, moves, Change, Delta, Group, GroupRef, Metric, Move, Moves,
    StageFigure, BUCKET_SECONDS,
};
pub use figures::{
    BuildError, Builder, NumberFigures, Row, StageFigures, Summary, TagFigures, MAX_ROWS,
};
pub use period::{spans, zone, PeriodError, PeriodKind, Span, MAX_PERIODS};
pub use postmortem::{visits, Act, Visit};

//! Instance queries as SQL over the `instances` columns and `instance_fields`, counts as
//! `GROUP BY`s (exact: read from the rows themselves, whichever node wrote them), and the
//! cursors of every paged list.
//!
//! A cursor is the lowercase hex of `{scope}\0{position}`: the scope names the list (an
//! outbox status, an inbox, a query's order), so a cursor of one list is refused by another.

use super::{from_json, PgStore};
use crate::query::{Counts, FieldTest, InstanceQuery, Page, SortBy};
use crate::{QueryStore, StoreError};
use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use waystation_core::{InstanceState, Status};

/// The page size for `limit` (0: 100; at most 1000), as the embedded stores take it.
pub(crate) fn page_size(limit: usize) -> usize {
    match limit {
        0 => 100,
        n => n.min(1000),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) || t.len() > 4096 {
        return None;
    }
    t.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// The position in `cursor`, when it is a cursor of list `scope`.
///
/// # Errors
/// [`StoreError::BadCursor`] for anything else.
pub(crate) fn cursor_in(cursor: Option<&str>, scope: &str) -> Result<Option<String>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let bytes = unhex(cursor).ok_or(StoreError::BadCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    match text.split_once('\0') {
        Some((s, position)) if s == scope => Ok(Some(position.to_owned())),
        _ => Err(StoreError::BadCursor),
    }
}

/// A page of `items` (each with its position), fetched one past `limit` to know whether
/// more follow.
pub(crate) fn page<T>(mut items: Vec<(String, T)>, limit: usize, scope: &str) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|(p, _)| hex(format!("{scope}\0{p}").as_bytes()))
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }
}

/// A time as it goes into a cursor position.
pub(crate) fn time_position(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A time from a cursor position.
pub(crate) fn parse_time(p: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(p)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::BadCursor)
}

/// The `instance_fields.kind` text of an index name from [`crate::keys::index_name`] (ASCII,
/// so the conversion is exact).
fn kind_text(index: &[u8]) -> String {
    String::from_utf8_lossy(index).into_owned()
}

/// What a query's rows are ordered by (then by id).
enum Order {
    Id,
    Updated,
    Deadline,
    Field(String, &'static [u8]),
}

impl Order {
    fn of(q: &InstanceQuery) -> Order {
        match &q.sort {
            None => Order::Id,
            Some(SortBy::Updated) => Order::Updated,
            Some(SortBy::Deadline) => Order::Deadline,
            Some(SortBy::Field { field, kind }) => {
                Order::Field(field.clone(), crate::keys::field_index(*kind))
            }
        }
    }

    fn scope(&self) -> String {
        match self {
            Order::Id => "q/id".into(),
            Order::Updated => "q/updated".into(),
            Order::Deadline => "q/deadline".into(),
            Order::Field(f, k) => format!("q/field/{}/{f}", kind_text(k)),
        }
    }
}

/// A statement being built: its SQL and its parameters.
#[derive(Default)]
struct Sql {
    text: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// Adds a parameter; its placeholder.
    fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    fn and(&mut self, cond: &str) {
        self.text.push_str(" AND ");
        self.text.push_str(cond);
    }
}

/// The conditions of `q` that columns answer; [`crate::kv_store::matches`] checks the rest
/// (and these again) on each row.
fn conditions(q: &InstanceQuery, sql: &mut Sql) {
    let eq = |sql: &mut Sql, column: &str, v: Option<String>| {
        if let Some(v) = v {
            let p = sql.bind(v);
            sql.and(&format!("i.{column} = {p}"));
        }
    };
    eq(sql, "workflow", q.workflow.clone());
    eq(sql, "stage", q.stage.clone());
    eq(sql, "status", q.status.map(|s| s.as_str().to_owned()));
    eq(sql, "sla", q.sla.map(|s| s.as_str().to_owned()));
    eq(sql, "business_key", q.key.clone());
    // Any current stage's assignee: the top level's or a running branch's.
    if let Some(a) = q.assignee.clone() {
        let p = sql.bind(a);
        sql.and(&format!("i.assignees @> ARRAY[{p}]::text[]"));
    }
    if let Some(v) = q.version {
        let p = sql.bind(i64::from(v));
        sql.and(&format!("i.version = {p}::bigint"));
    }
    if !q.sla_in.is_empty() {
        let p = sql.bind(
            q.sla_in
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
        sql.and(&format!("i.sla = ANY({p})"));
    }
    if let Some(tag) = &q.tag {
        let p = sql.bind(vec![tag.clone()]);
        sql.and(&format!("i.tags @> {p}::text[]"));
    }
    if let Some(t) = q.updated_before {
        let p = sql.bind(t);
        sql.and(&format!("i.updated_at < {p}"));
    }
    if let Some(t) = q.acted_before {
        let p = sql.bind(t);
        sql.and(&format!("i.acted_at < {p}"));
    }
    if let Some(stage) = &q.breached_stage {
        let p = sql.bind(vec![stage.clone()]);
        sql.and(&format!("i.breached_stages @> {p}::text[]"));
    }
    match (q.breached, &q.breached_stage) {
        (Some(true), None) => sql.and("cardinality(i.breached_stages) > 0"),
        (Some(false), None) => sql.and("cardinality(i.breached_stages) = 0"),
        _ => {}
    }
    if q.untouched.is_some() {
        sql.and("i.status = 'running'");
    }
    for f in &q.fields {
        field_condition(f, sql);
    }
}

/// An `EXISTS` on the field rows for one field test.
fn field_condition(f: &crate::query::FieldFilter, sql: &mut Sql) {
    let field = sql.bind(f.field.clone());
    let mut cond = format!(
        "EXISTS (SELECT 1 FROM instance_fields f WHERE f.instance_id = i.id \
         AND f.workflow = i.workflow AND f.field = {field}"
    );
    match &f.test {
        FieldTest::Equals(v) => {
            let (index, bytes) = crate::keys::field_value(v);
            let k = sql.bind(kind_text(index));
            let b = sql.bind(bytes);
            cond.push_str(&format!(" AND f.kind = {k} AND f.value = {b}"));
        }
        FieldTest::Range { lower, upper } => {
            let sample = lower.as_ref().or(upper.as_ref()).map(|b| &b.value);
            let index = sample.map_or(crate::keys::index_name::NUMBER, |v| {
                crate::keys::field_value(v).0
            });
            let k = sql.bind(kind_text(index));
            cond.push_str(&format!(" AND f.kind = {k}"));
            for (bound, above) in [(lower, true), (upper, false)] {
                if let Some(b) = bound {
                    let op = match (above, b.inclusive) {
                        (true, true) => ">=",
                        (true, false) => ">",
                        (false, true) => "<=",
                        (false, false) => "<",
                    };
                    let p = sql.bind(crate::keys::field_value(&b.value).1);
                    cond.push_str(&format!(" AND f.value {op} {p}"));
                }
            }
        }
        FieldTest::WordPrefixes(words) => {
            // The first word narrows by index; every word is checked on the state.
            let first = words.first().cloned().unwrap_or_default().into_bytes();
            let mut end = first.clone();
            end.push(0xff);
            let k = sql.bind(kind_text(crate::keys::index_name::WORD));
            let (a, b) = (sql.bind(first), sql.bind(end));
            cond.push_str(&format!(
                " AND f.kind = {k} AND f.value >= {a} AND f.value < {b}"
            ));
        }
    }
    cond.push(')');
    sql.and(&cond);
}

/// The sort expression of `order` (`NULL` sorts last and is excluded where it applies).
fn sort_expr(order: &Order, sql: &mut Sql) -> (String, String) {
    match order {
        Order::Id => ("i.id".into(), String::new()),
        Order::Updated => ("i.updated_at".into(), String::new()),
        Order::Deadline => ("i.deadline".into(), String::new()),
        Order::Field(field, kind) => {
            let f = sql.bind(field.clone());
            let k = sql.bind(kind_text(kind));
            (
                "s.value".into(),
                format!(
                    " JOIN instance_fields s ON s.instance_id = i.id AND s.workflow = i.workflow \
                     AND s.field = {f} AND s.kind = {k}"
                ),
            )
        }
    }
}

/// Binds a cursor position as the lower bound of `(sort, id)`.
fn after(order: &Order, position: &str, sort: &str, sql: &mut Sql) -> Result<(), StoreError> {
    let (value, id) = position.split_once('\0').ok_or(StoreError::BadCursor)?;
    let id_p = sql.bind(id.to_owned());
    let value_p = match order {
        Order::Id => {
            sql.and(&format!("i.id > {id_p}"));
            return Ok(());
        }
        Order::Updated | Order::Deadline => sql.bind(parse_time(value)?),
        Order::Field(..) => sql.bind(unhex(value).ok_or(StoreError::BadCursor)?),
    };
    sql.and(&format!("({sort}, i.id) > ({value_p}, {id_p})"));
    Ok(())
}

/// The position of a row of `order`.
fn position(order: &Order, row: &postgres::Row) -> String {
    let id: String = row.get(0);
    let value = match order {
        Order::Id => String::new(),
        Order::Updated | Order::Deadline => row
            .get::<_, Option<DateTime<Utc>>>(2)
            .map(time_position)
            .unwrap_or_default(),
        Order::Field(..) => hex(row.get::<_, &[u8]>(2)),
    };
    format!("{value}\0{id}")
}

impl PgStore {
    /// One chunk of a query: up to `n` rows after `position`.
    fn query_chunk(
        &self,
        q: &InstanceQuery,
        order: &Order,
        from: Option<&str>,
        n: usize,
    ) -> Result<Vec<(String, InstanceState)>, StoreError> {
        let mut sql = Sql::default();
        let (sort, join) = sort_expr(order, &mut sql);
        sql.text = format!("SELECT i.id, i.state, {sort} FROM instances i{join} WHERE true");
        if matches!(order, Order::Deadline) {
            sql.and("i.deadline IS NOT NULL");
        }
        conditions(q, &mut sql);
        if let Some(p) = from {
            after(order, p, &sort, &mut sql)?;
        }
        let limit = sql.bind(n as i64);
        sql.text
            .push_str(&format!(" ORDER BY {sort}, i.id LIMIT {limit}"));
        let params: Vec<&(dyn ToSql + Sync)> = sql
            .params
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.with(|c| c.query(&sql.text, &params))?;
        rows.iter()
            .map(|r| Ok((position(order, r), from_json("an instance", r.get(1))?)))
            .collect()
    }
}

impl QueryStore for PgStore {
    fn query(&self, q: &InstanceQuery) -> Result<Page<InstanceState>, StoreError> {
        let order = Order::of(q);
        let scope = order.scope();
        let limit = page_size(q.limit);
        let mut position = cursor_in(q.cursor.as_deref(), &scope)?;
        let mut items = Vec::new();
        // Rows failing a test no column answers (`untouched`) are skipped: read on until
        // the page is full or the rows run out.
        loop {
            let chunk = self.query_chunk(q, &order, position.as_deref(), limit + 1)?;
            let exhausted = chunk.len() <= limit;
            position = chunk.last().map(|(p, _)| p.clone()).or(position);
            items.extend(
                chunk
                    .into_iter()
                    .filter(|(_, s)| crate::kv_store::matches(q, s)),
            );
            if exhausted || items.len() > limit {
                return Ok(page(items, limit, &scope));
            }
        }
    }

    fn counts(&self, workflow: &str) -> Result<Counts, StoreError> {
        let (stages, slas) = self.with(|c| {
            let stages = c.query(
                "SELECT stage, count(*) FROM instances WHERE workflow = $1 GROUP BY stage",
                &[&workflow],
            )?;
            let slas = c.query(
                "SELECT sla, count(*) FROM instances WHERE workflow = $1 AND sla IS NOT NULL
                 GROUP BY sla",
                &[&workflow],
            )?;
            Ok((stages, slas))
        })?;
        let tally = |rows: Vec<postgres::Row>| {
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
                .collect()
        };
        Ok(Counts {
            by_stage: tally(stages),
            by_sla: tally(slas),
        })
    }

    fn running_with_key(&self, workflow: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT id FROM instances WHERE workflow = $1 AND running_key = $2",
                &[&workflow, &key],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn count_status(&self, status: Status) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM instances WHERE status = $1",
                    &[&status.as_str()],
                )?
                .get(0);
            Ok(n as u64)
        })
    }
}

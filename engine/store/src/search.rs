//! Queries on business keys, fields and deadlines: which index to walk for a query, where
//! to start and stop in it, and the test each instance it names must pass.
//!
//! Every index here ends its keys with `\0{instance}` and instance ids hold no 0 byte, so
//! the instance is what follows the last 0 byte. A text field has one key per word; a walk
//! over words beginning with a prefix would name an instance once per matching word, so an
//! entry counts only under the first of the instance's words that match (see
//! [`Walk::first_word_only`]), and every instance appears once on a page and across pages.

use crate::keys::{self, field_prefix, index_name as ix, part, prefix};
use crate::query::{Bound, FieldFilter, FieldTest, InstanceQuery, SortBy};
use waystation_core::fields::words;
use waystation_core::{FieldValue, InstanceState, Status};

/// The part of an index to walk.
pub(crate) struct Walk {
    /// Every key walked starts with this.
    pub prefix: Vec<u8>,
    /// Start after this key (exclusive) when there is no cursor.
    pub start: Option<Vec<u8>>,
    /// Stop at the first key whose bytes after `prefix` compare past this bound
    /// (`(bytes, inclusive)`: with `inclusive` the bound itself is still walked).
    pub stop: Option<(Vec<u8>, bool)>,
    /// For a walk over text words from `prefix`: the query's word, so an instance counts
    /// only under the first of its words that begins with it.
    pub first_word_only: Option<String>,
}

impl Walk {
    fn all(prefix: Vec<u8>) -> Walk {
        Walk {
            prefix,
            start: None,
            stop: None,
            first_word_only: None,
        }
    }

    /// True when `key` is past the end of the walk.
    pub fn past_end(&self, key: &[u8]) -> bool {
        let Some((bound, inclusive)) = &self.stop else {
            return false;
        };
        let rest = &key[self.prefix.len().min(key.len())..];
        let head = &rest[..bound.len().min(rest.len())];
        if *inclusive {
            head > bound.as_slice()
        } else {
            head >= bound.as_slice()
        }
    }

    /// The instance `key` names, unless the entry is a repeat of one counted under another
    /// word (judged on `state`, read by the caller: see [`Walk::counts`]).
    pub fn instance_of(key: &[u8]) -> Option<&[u8]> {
        let at = key.iter().rposition(|b| *b == 0)?;
        Some(&key[at + 1..])
    }

    /// False when `key` is a text word entry that is not the first matching word of `state`.
    pub fn counts(&self, key: &[u8], state: &InstanceState, q: &InstanceQuery) -> bool {
        let Some(query_word) = &self.first_word_only else {
            return true;
        };
        let Some(end) = key.iter().rposition(|b| *b == 0) else {
            return false;
        };
        let word = &key[self.prefix.len() - query_word.len()..end];
        let field = q.fields.iter().find_map(|f| match &f.test {
            FieldTest::WordPrefixes(_) => Some(f.field.as_str()),
            _ => None,
        });
        let Some(FieldValue::Text(text)) = field.and_then(|f| state.fields.get(f)) else {
            return false;
        };
        words(text)
            .into_iter()
            .find(|w| w.starts_with(query_word.as_str()))
            .is_some_and(|first| first.as_bytes() == word)
    }
}

/// The walk for a query on keys, fields or deadlines, or `None` for the other indexes.
pub(crate) fn plan(q: &InstanceQuery) -> Option<Walk> {
    let wf = q.workflow.as_deref().unwrap_or_default();
    if let Some(sort) = &q.sort {
        // A filter on the field sorted by walks that field's index already in its order,
        // from where the filter starts: never the whole index.
        if let SortBy::Field { field, .. } = sort {
            if let Some(f) = q
                .fields
                .iter()
                .find(|f| f.field == *field && !matches!(f.test, FieldTest::WordPrefixes(_)))
            {
                return Some(field_walk(wf, f));
            }
        }
        return Some(match sort {
            SortBy::Deadline => Walk::all(prefix(&[part::INDEX, ix::DEADLINE])),
            SortBy::Updated => Walk::all(prefix(&[part::INDEX, ix::UPDATED])),
            SortBy::Field { field, kind } => {
                let index = keys::field_index(*kind);
                Walk::all(field_prefix(index, wf, field))
            }
        });
    }
    if let Some(key) = &q.key {
        return Some(Walk::all(prefix(&[
            part::INDEX,
            ix::KEY,
            wf.as_bytes(),
            key.as_bytes(),
        ])));
    }
    if let Some(f) = q.fields.first() {
        return Some(field_walk(wf, f));
    }
    if let Some(user) = &q.assignee {
        return Some(Walk::all(prefix(&[
            part::INDEX,
            ix::ASSIGNEE,
            user.as_bytes(),
        ])));
    }
    if let Some(stage) = &q.breached_stage {
        return Some(Walk::all(prefix(&[
            part::INDEX,
            ix::BREACHED_STAGE,
            wf.as_bytes(),
            stage.as_bytes(),
        ])));
    }
    if q.breached == Some(true) && q.workflow.is_some() {
        return Some(Walk::all(prefix(&[
            part::INDEX,
            ix::BREACHED,
            wf.as_bytes(),
        ])));
    }
    q.acted_before.map(|before| Walk {
        prefix: prefix(&[part::INDEX, ix::ACTED]),
        start: None,
        stop: Some((keys::time(before).to_vec(), false)),
        first_word_only: None,
    })
}

fn field_walk(wf: &str, f: &FieldFilter) -> Walk {
    match &f.test {
        FieldTest::Equals(v) => {
            let (index, bytes) = keys::field_value(v);
            let mut p = field_prefix(index, wf, &f.field);
            p.extend_from_slice(&bytes);
            p.push(0);
            Walk::all(p)
        }
        FieldTest::Range { lower, upper } => {
            let kind = lower.as_ref().or(upper.as_ref()).map(|b| &b.value);
            let index = kind.map_or(ix::NUMBER, |v| keys::field_value(v).0);
            let p = field_prefix(index, wf, &f.field);
            // `prefix + value` sorts before every `prefix + value + \0 + id`, and
            // `prefix + value + \xff` after them (ids hold no \xff: they are ASCII).
            let start = lower.as_ref().map(|b| {
                let mut k = p.clone();
                k.extend_from_slice(&keys::field_value(&b.value).1);
                if !b.inclusive {
                    k.push(0xff);
                }
                k
            });
            let stop = upper
                .as_ref()
                .map(|b| (keys::field_value(&b.value).1, b.inclusive));
            Walk {
                prefix: p,
                start,
                stop,
                first_word_only: None,
            }
        }
        FieldTest::WordPrefixes(query_words) => {
            let first = query_words.first().cloned().unwrap_or_default();
            let mut p = field_prefix(ix::WORD, wf, &f.field);
            p.extend_from_slice(first.as_bytes());
            Walk {
                prefix: p,
                start: None,
                stop: None,
                first_word_only: Some(first),
            }
        }
    }
}

/// True when `s` passes the key, field and sort conditions of `q`.
pub(crate) fn matches(q: &InstanceQuery, s: &InstanceState) -> bool {
    let breached = |stage: Option<&str>| {
        s.sla_record
            .iter()
            .any(|r| r.breached() && stage.is_none_or(|st| r.stage == st))
    };
    q.key.as_ref().is_none_or(|k| s.key.as_ref() == Some(k))
        && q.breached
            .is_none_or(|b| b == breached(q.breached_stage.as_deref()))
        && q.breached_stage
            .as_ref()
            .is_none_or(|st| breached(Some(st)))
        && q.assignee.as_ref().is_none_or(|u| {
            s.status == Status::Running && s.all_assignees().iter().any(|a| a.user == *u)
        })
        && q.acted_before
            .is_none_or(|t| s.acted_at.unwrap_or(s.started_at) < t)
        && (q.sla_in.is_empty()
            || (s.status == Status::Running && q.sla_in.contains(&s.worst_sla().state)))
        && q.fields.iter().all(|f| passes(f, s))
        && match &q.sort {
            Some(SortBy::Deadline) => {
                s.status == Status::Running && s.worst_sla().deadline.is_some()
            }
            Some(SortBy::Field { field, .. }) => s.fields.contains_key(field),
            _ => true,
        }
}

fn passes(f: &FieldFilter, s: &InstanceState) -> bool {
    let Some(value) = s.fields.get(&f.field) else {
        return false;
    };
    match &f.test {
        FieldTest::Equals(v) => v == value,
        FieldTest::Range { lower, upper } => {
            lower.as_ref().is_none_or(|b| above(value, b))
                && upper.as_ref().is_none_or(|b| below(value, b))
        }
        FieldTest::WordPrefixes(query_words) => match value {
            FieldValue::Text(text) => {
                let have = words(text);
                query_words
                    .iter()
                    .all(|q| have.iter().any(|w| w.starts_with(q.as_str())))
            }
            _ => false,
        },
    }
}

fn order(a: &FieldValue, b: &FieldValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (FieldValue::Number(x), FieldValue::Number(y)) => x.partial_cmp(y),
        (FieldValue::Timestamp(x), FieldValue::Timestamp(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn above(v: &FieldValue, b: &Bound) -> bool {
    use std::cmp::Ordering::*;
    matches!(
        (order(v, &b.value), b.inclusive),
        (Some(Greater), _) | (Some(Equal), true)
    )
}

fn below(v: &FieldValue, b: &Bound) -> bool {
    use std::cmp::Ordering::*;
    matches!(
        (order(v, &b.value), b.inclusive),
        (Some(Less), _) | (Some(Equal), true)
    )
}

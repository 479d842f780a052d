//! Timestamps serialised exactly as chrono's own `Serialize` writes them (RFC 3339 in UTC
//! with `Z`, fractional seconds in 0, 3, 6 or 9 digits), formatted into one string first,
//! and read with chrono's strict RFC 3339 parser first.
//!
//! Why: chrono's impl hands serde_json a `Display` through `collect_str`, and serde_json
//! escapes every piece chrono writes (about 25 per timestamp) as a separate string
//! fragment. A stored instance state holds a dozen timestamps, so that came to about a
//! tenth of a durable command's CPU (BENCHMARKS.md, "Timestamps written in one piece").
//! Formatting with chrono into a `String` and serialising it as one `str` writes the same
//! bytes. Reading tries chrono's strict RFC 3339 parser before the relaxed one chrono's
//! `Deserialize` uses, so every string that read before reads alike, and cheaper.
//!
//! Use on a field: `#[serde(with = "crate::timestamp")]`, or `crate::timestamp::option`
//! for an `Option<DateTime<Utc>>`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::Visitor;
use serde::{Deserializer, Serialize, Serializer};

/// Serialises `t` as chrono does (`SecondsFormat::AutoSi`, `Z` for UTC).
///
/// # Errors
/// Only the serializer's own.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A timestamp that serialises through [`serialize`].
pub(crate) struct Rfc3339<'a>(&'a DateTime<Utc>);

impl Serialize for Rfc3339<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// Reads a timestamp as chrono's `Deserialize` does, trying the strict RFC 3339 parser
/// first: it is several times cheaper than the relaxed one chrono's impl uses, and every
/// timestamp this engine writes is strict RFC 3339. Anything else (a space for `T`, no
/// padding, `UTC`) falls back to chrono's relaxed parser, so what read before reads alike.
///
/// # Errors
/// The relaxed parser's error when neither parser reads the string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(Visit)
}

/// The visitor of [`deserialize`].
struct Visit;

impl Visitor<'_> for Visit {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 date and time")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Ok(t.with_timezone(&Utc)),
            Err(_) => s.parse::<DateTime<Utc>>().map_err(E::custom),
        }
    }
}

/// [`serialize`] and [`deserialize`] for an `Option<DateTime<Utc>>` (`null` is `None`;
/// give the field `#[serde(default)]` so that a missing one is `None` too).
pub mod option {
    use super::Rfc3339;
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// As [`super::serialize`], `None` as the serializer's none.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&Rfc3339(t)),
            None => s.serialize_none(),
        }
    }

    /// As [`super::deserialize`], `null` as `None`.
    ///
    /// # Errors
    /// As [`super::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<Rfc3339Owned>::deserialize(d).map(|t| t.map(|t| t.0))
    }

    /// A timestamp read through [`super::deserialize`].
    struct Rfc3339Owned(DateTime<Utc>);

    impl<'de> Deserialize<'de> for Rfc3339Owned {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::deserialize(d).map(Rfc3339Owned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Ours {
        #[serde(with = "super")]
        at: DateTime<Utc>,
        #[serde(with = "super::option", default)]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chronos {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    fn at(y: i32, nanos: u32) -> DateTime<Utc> {
        let day = NaiveDate::from_ymd_opt(y, 10, 1).expect("a date");
        Utc.from_utc_datetime(&day.and_hms_nano_opt(23, 59, 59, nanos).expect("a time"))
    }

    #[test]
    fn a_timestamp_is_written_byte_for_byte_as_chrono_writes_it() {
        let cases = [
            at(2026, 0),
            at(2026, 120_000_000),
            at(2026, 120_500_000),
            at(2026, 120_500_001),
            // A leap second, as chrono represents it.
            at(2026, 1_500_000_000),
            at(1969, 7),
            at(10_000, 0),
            at(-44, 1_000),
        ];
        for t in cases {
            for maybe in [None, Some(t)] {
                let ours = serde_json::to_string(&Ours { at: t, maybe }).expect("ours");
                let theirs = serde_json::to_string(&Chronos { at: t, maybe }).expect("chrono's");
                assert_eq!(ours, theirs, "{t:?}");
                let read: Ours = serde_json::from_str(&theirs).expect("reads chrono's");
                assert_eq!(read, Ours { at: t, maybe });
                let back: DateTime<Utc> =
                    serde_json::from_str(&serde_json::to_string(&Rfc3339(&t)).expect("one"))
                        .expect("reads back");
                assert_eq!(back, t);
            }
        }
    }

    #[test]
    fn a_timestamp_chrono_reads_loosely_still_reads_and_a_bad_one_names_the_problem() {
        #[derive(serde::Deserialize, Debug)]
        struct Ours {
            #[serde(with = "super")]
            at: DateTime<Utc>,
            #[serde(with = "super::option", default)]
            maybe: Option<DateTime<Utc>>,
        }
        let loose = r#"{"at": "2026-10-01 08:00:00+08:00"}"#;
        let read: Ours = serde_json::from_str(loose).expect("relaxed form");
        let midnight = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).single();
        assert_eq!(Some(read.at), midnight);
        assert_eq!(read.maybe, None);
        let with_null: Ours =
            serde_json::from_str(r#"{"at": "2026-10-01T00:00:00Z", "maybe": null}"#).expect("null");
        assert_eq!(with_null.maybe, None);
        let bad = serde_json::from_str::<Ours>(r#"{"at": "yesterday"}"#)
            .expect_err("not a time")
            .to_string();
        let chronos = serde_json::from_str::<DateTime<Utc>>(r#""yesterday""#)
            .expect_err("not a time")
            .to_string();
        assert!(
            bad.starts_with("input contains invalid characters"),
            "{bad}"
        );
        assert_eq!(
            bad.split(" at line").next(),
            chronos.split(" at line").next()
        );
    }
}

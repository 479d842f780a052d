//! One stored figure of one bucket: a count, a duration sketch or a number summary, each
//! mergeable (buckets are added together into the periods a caller asks for), and its
//! compact binary form.

use sketches_ddsketch::{Config, DDSketch};

/// The relative error of every percentile the reports give: a p50 or p90 read from a
/// sketch is within 1% of the true value of that rank (DDSketch's guarantee for the
/// default configuration, `alpha = 0.01`). Counts, means (sum / count), minimums and
/// maximums are exact.
pub const RELATIVE_ERROR: f64 = 0.01;

/// A figure of one bucket (or of several merged).
#[derive(Clone)]
pub enum Cell {
    /// A count; can go down (a running instance that ends leaves the "running" count of the
    /// bucket it started in).
    Count(i64),
    /// Durations in seconds.
    Sketch(Box<DDSketch>),
    /// Values of a number field.
    Numbers(Numbers),
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Count(n) => write!(f, "Count({n})"),
            Cell::Sketch(s) => write!(f, "Sketch(count {}, sum {:?})", s.count(), s.sum()),
            Cell::Numbers(n) => write!(f, "{n:?}"),
        }
    }
}

/// Count, sum, min and max of a number field's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Numbers {
    /// How many values.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Numbers {
    /// One value.
    pub fn one(v: f64) -> Self {
        Numbers {
            count: 1,
            sum: v,
            min: v,
            max: v,
        }
    }

    fn merge(&mut self, o: &Numbers) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// A stored cell could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable report cell: {0}")]
pub struct CellError(String);

const COUNT: u8 = b'c';
const SKETCH: u8 = b's';
const NUMBERS: u8 = b'n';

impl Cell {
    /// An empty sketch.
    pub fn sketch() -> Self {
        Cell::Sketch(Box::new(DDSketch::new(Config::defaults())))
    }

    /// A sketch of one duration in seconds.
    pub fn duration(seconds: f64) -> Self {
        let mut s = DDSketch::new(Config::defaults());
        s.add(seconds.max(0.0));
        Cell::Sketch(Box::new(s))
    }

    /// Adds one change into this cell in place (a duration joins the sketch without a
    /// sketch of its own being made), as [`Cell::merge`] of its one-change cell would.
    ///
    /// # Errors
    /// When the kinds differ.
    pub fn add(&mut self, change: super::delta::Change) -> Result<(), CellError> {
        use super::delta::Change;
        match (self, change) {
            (Cell::Count(a), Change::Count(b)) => *a += b,
            (Cell::Sketch(s), Change::Duration(d)) => s.add(d.max(0.0)),
            (Cell::Numbers(n), Change::Number(v)) => n.merge(&Numbers::one(v)),
            (a, _) => return Err(CellError(format!("a {} cannot take that change", a.kind()))),
        }
        Ok(())
    }

    /// Adds `o` into this cell; cells of different kinds (a stored cell from an older
    /// layout) leave this one as it is and say so.
    ///
    /// # Errors
    /// When the kinds differ.
    pub fn merge(&mut self, o: &Cell) -> Result<(), CellError> {
        match (self, o) {
            (Cell::Count(a), Cell::Count(b)) => *a += b,
            (Cell::Sketch(a), Cell::Sketch(b)) => a
                .merge(b)
                .map_err(|e| CellError(format!("sketches do not merge: {e}")))?,
            (Cell::Numbers(a), Cell::Numbers(b)) => a.merge(b),
            (a, b) => {
                return Err(CellError(format!(
                    "a {} cannot take a {}",
                    a.kind(),
                    b.kind()
                )))
            }
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        match self {
            Cell::Count(_) => "count",
            Cell::Sketch(_) => "sketch",
            Cell::Numbers(_) => "number summary",
        }
    }

    /// True for a count of zero: nothing left to store.
    pub fn is_zero(&self) -> bool {
        matches!(self, Cell::Count(0))
    }

    /// The count, or 0 for another kind.
    pub fn count(&self) -> i64 {
        match self {
            Cell::Count(n) => *n,
            _ => 0,
        }
    }

    /// The stored form: a kind byte, then an i64 (count), four numbers (number summary) or
    /// the sketch in DDSketch's portable binary encoding (sparse bins: a few dozen bytes).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Cell::Count(n) => {
                let mut out = vec![COUNT];
                out.extend_from_slice(&n.to_le_bytes());
                out
            }
            Cell::Sketch(s) => {
                let mut out = vec![SKETCH];
                out.extend_from_slice(&s.to_java_bytes());
                out
            }
            Cell::Numbers(n) => {
                let mut out = vec![NUMBERS];
                out.extend_from_slice(&n.count.to_le_bytes());
                for v in [n.sum, n.min, n.max] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out
            }
        }
    }

    /// The inverse of [`Cell::encode`].
    ///
    /// # Errors
    /// Bytes that [`Cell::encode`] did not make.
    pub fn decode(bytes: &[u8]) -> Result<Cell, CellError> {
        let word = |i: usize| -> Result<[u8; 8], CellError> {
            bytes
                .get(1 + 8 * i..9 + 8 * i)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| CellError("too short".into()))
        };
        match bytes.first() {
            Some(&COUNT) => Ok(Cell::Count(i64::from_le_bytes(word(0)?))),
            Some(&NUMBERS) => Ok(Cell::Numbers(Numbers {
                count: u64::from_le_bytes(word(0)?),
                sum: f64::from_le_bytes(word(1)?),
                min: f64::from_le_bytes(word(2)?),
                max: f64::from_le_bytes(word(3)?),
            })),
            Some(&SKETCH) if bytes.len() == 1 => Ok(Cell::sketch()),
            Some(&SKETCH) => DDSketch::from_java_bytes(&bytes[1..])
                .map(|s| Cell::Sketch(Box::new(s)))
                .map_err(|e| CellError(e.to_string())),
            _ => Err(CellError("unknown kind".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cell, Numbers, RELATIVE_ERROR};

    #[test]
    fn a_sketch_read_back_merges_with_a_fresh_one_and_keeps_percentiles_within_the_bound() {
        let mut a = Cell::sketch();
        for s in 1..=100 {
            a.merge(&Cell::duration(f64::from(s) * 60.0)).unwrap();
        }
        let mut back = Cell::decode(&a.encode()).unwrap();
        back.merge(&Cell::duration(7200.0)).unwrap();
        let Cell::Sketch(s) = back else {
            panic!("a sketch")
        };
        assert_eq!(s.count(), 101);
        assert_eq!(s.max(), Some(7200.0));
        let p50 = s.quantile(0.5).unwrap().unwrap();
        assert!((p50 - 3060.0).abs() <= 3060.0 * RELATIVE_ERROR, "{p50}");
    }

    #[test]
    fn counts_and_number_summaries_round_trip_and_add_up() {
        let mut c = Cell::decode(&Cell::Count(-3).encode()).unwrap();
        c.merge(&Cell::Count(5)).unwrap();
        assert_eq!(c.count(), 2);
        let mut n = Cell::Numbers(Numbers::one(4.0));
        n.merge(&Cell::decode(&Cell::Numbers(Numbers::one(2.0)).encode()).unwrap())
            .unwrap();
        let Cell::Numbers(n) = n else { panic!() };
        assert_eq!((n.count, n.sum, n.min, n.max), (2, 6.0, 2.0, 4.0));
        assert!(Cell::Count(1).merge(&Cell::sketch()).is_err());
        assert!(Cell::decode(b"x").is_err());
    }
}

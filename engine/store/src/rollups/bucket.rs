//! One report bucket value: every figure of one workflow, group and 15-minute bucket under
//! one key (`rb/{workflow}/{dim}/{bucket}/{value}`).
//!
//! Why one value and not one key per figure: a fold that moves a group's bucket moves
//! several of its figures at once (a stage left is `left`, `time` and the next stage's
//! `entered`), and in an LSM store each key written costs a memtable insert (a skiplist
//! search over keys with long shared prefixes) and a journal entry, whatever its size. One
//! value per group and bucket wrote a seventh of the keys in the reports benchmark; a
//! report reads a period's buckets with one key per group and bucket instead of one per
//! figure.
//!
//! Stored form, figures in the byte order of their names: per figure the name's length
//! (u32 little-endian), the name, the cell's length (u32 little-endian) and the cell
//! ([`Cell::encode`]). A figure is decoded only when a fold moves it or a report reads it;
//! one the fold did not move is written back as the bytes it was read as.

use waystation_core::report::{Cell, CellError, Change, Numbers};

/// The cell of a figure that one change starts.
pub(crate) fn cell_of(change: Change) -> Cell {
    match change {
        Change::Count(n) => Cell::Count(n),
        Change::Duration(s) => Cell::duration(s),
        Change::Number(v) => Cell::Numbers(Numbers::one(v)),
    }
}

/// A bucket value could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The bytes end inside a figure.
    #[error("bucket value cut short at byte {0}")]
    Truncated(usize),
    /// A figure's name is not UTF-8 (every figure name is): shown lossily.
    #[error("figure name {0:?} is not UTF-8")]
    Name(String),
    /// A figure's cell does not decode, or cannot take the change moved into it.
    #[error("figure {figure}: {source}")]
    Cell {
        /// The figure's name.
        figure: String,
        /// What the cell said.
        source: CellError,
    },
}

/// One figure of a bucket: its stored bytes, and its cell once decoded.
#[derive(Debug, Clone)]
struct Figure {
    name: Box<str>,
    /// [`Cell::encode`] of the cell as last read or written.
    stored: Vec<u8>,
    /// The decoded cell, once a fold moved it: kept decoded while the bucket is cached, so
    /// the next fold adds into it without decoding again.
    cell: Option<Cell>,
    /// `cell` moved since `stored` was written: [`Bucket::encode`] encodes it again (and
    /// only then: a sketch's encoding is most of a fold's encoding work).
    moved: bool,
}

impl Figure {
    fn cell_error(&self, source: CellError) -> BucketError {
        BucketError::Cell {
            figure: self.name.to_string(),
            source,
        }
    }
}

/// Every figure of one group and bucket.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// By name, in byte order.
    figures: Vec<Figure>,
}

/// A figure's name as text.
fn figure_name(name: &[u8]) -> Result<&str, BucketError> {
    std::str::from_utf8(name).map_err(|_| BucketError::Name(String::from_utf8_lossy(name).into()))
}

/// Reads a little-endian length of `N` bytes at `at`.
fn length<const N: usize>(bytes: &[u8], at: usize) -> Result<(usize, usize), BucketError> {
    let b: [u8; N] = bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or(BucketError::Truncated(at))?;
    let mut word = [0u8; 8];
    word[..N].copy_from_slice(&b);
    Ok((u64::from_le_bytes(word) as usize, at + N))
}

impl Bucket {
    /// Reads a stored bucket value without decoding its cells.
    ///
    /// # Errors
    /// [`BucketError::Truncated`] or [`BucketError::Name`] for bytes [`Bucket::encode`] did
    /// not make.
    pub fn decode(bytes: &[u8]) -> Result<Bucket, BucketError> {
        let mut figures = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let (n, name_at) = length::<4>(bytes, at)?;
            let name = bytes
                .get(name_at..name_at + n)
                .ok_or(BucketError::Truncated(name_at))?;
            let name = figure_name(name)?;
            let (len, cell_at) = length::<4>(bytes, name_at + n)?;
            let stored = bytes
                .get(cell_at..cell_at + len)
                .ok_or(BucketError::Truncated(cell_at))?;
            figures.push(Figure {
                name: name.into(),
                stored: stored.to_vec(),
                cell: None,
                moved: false,
            });
            at = cell_at + len;
        }
        Ok(Bucket { figures })
    }

    /// Moves figure `name` by `change` (a figure not there yet starts from the change).
    ///
    /// # Errors
    /// [`BucketError::Cell`] when the stored cell does not decode or is of another kind;
    /// [`BucketError::Name`] for a new figure whose name is not UTF-8.
    pub fn add(&mut self, name: &[u8], change: Change) -> Result<(), BucketError> {
        let i = match self
            .figures
            .binary_search_by(|f| f.name.as_bytes().cmp(name))
        {
            Ok(i) => i,
            Err(i) => {
                self.figures.insert(
                    i,
                    Figure {
                        name: figure_name(name)?.into(),
                        stored: Vec::new(),
                        cell: Some(cell_of(change)),
                        moved: true,
                    },
                );
                return Ok(());
            }
        };
        let f = &mut self.figures[i];
        let mut cell = match f.cell.take() {
            Some(c) => c,
            None => Cell::decode(&f.stored).map_err(|e| f.cell_error(e))?,
        };
        let added = cell.add(change).map_err(|e| f.cell_error(e));
        f.cell = Some(cell);
        f.moved = true;
        added
    }

    /// Merges `cell` into figure `name` (a figure not there yet takes it as it is).
    ///
    /// # Errors
    /// As [`Bucket::add`].
    pub fn merge(&mut self, name: &[u8], cell: Cell) -> Result<(), BucketError> {
        match self
            .figures
            .binary_search_by(|f| f.name.as_bytes().cmp(name))
        {
            Ok(i) => {
                let f = &mut self.figures[i];
                let mut mine = match f.cell.take() {
                    Some(c) => c,
                    None => Cell::decode(&f.stored).map_err(|e| f.cell_error(e))?,
                };
                let merged = mine.merge(&cell).map_err(|e| f.cell_error(e));
                f.cell = Some(mine);
                f.moved = true;
                merged
            }
            Err(i) => {
                self.figures.insert(
                    i,
                    Figure {
                        name: figure_name(name)?.into(),
                        stored: Vec::new(),
                        cell: Some(cell),
                        moved: true,
                    },
                );
                Ok(())
            }
        }
    }

    /// The stored form, with every moved figure encoded again and a count that came back
    /// to zero left out; `None` when no figure is left (the key is deleted then).
    pub fn encode(&mut self) -> Option<Vec<u8>> {
        self.figures
            .retain(|f| !(f.moved && f.cell.as_ref().is_some_and(Cell::is_zero)));
        if self.figures.is_empty() {
            return None;
        }
        let mut size = 0;
        for f in &mut self.figures {
            if let (true, Some(c)) = (f.moved, &f.cell) {
                f.stored = c.encode();
                f.moved = false;
            }
            size += 8 + f.name.len() + f.stored.len();
        }
        let mut out = Vec::with_capacity(size);
        for f in &self.figures {
            out.extend_from_slice(&(f.name.len() as u32).to_le_bytes());
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(&(f.stored.len() as u32).to_le_bytes());
            out.extend_from_slice(&f.stored);
        }
        Some(out)
    }

    /// Drops the decoded cells of figures whose stored bytes are current (after
    /// [`Bucket::encode`]): a decoded duration sketch keeps its bins dense (up to 2,048
    /// of 8 bytes), its stored form only the ones in use, so a cache of buckets holds
    /// them stored.
    pub fn release_cells(&mut self) {
        for f in self.figures.iter_mut().filter(|f| !f.moved) {
            f.cell = None;
        }
    }

    /// Every figure with its cell, in name order.
    ///
    /// # Errors
    /// [`BucketError::Cell`] for a cell that does not decode.
    pub fn figures(&self) -> impl Iterator<Item = Result<(&str, Cell), BucketError>> {
        self.figures.iter().map(|f| {
            let cell = match &f.cell {
                Some(c) => c.clone(),
                None => Cell::decode(&f.stored).map_err(|e| f.cell_error(e))?,
            };
            Ok((&*f.name, cell))
        })
    }

    /// How many figures it holds.
    pub fn len(&self) -> usize {
        self.figures.len()
    }

    /// True when it holds no figure.
    pub fn is_empty(&self) -> bool {
        self.figures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{Bucket, BucketError};
    use waystation_core::report::{Cell, Change};

    fn counts(b: &Bucket) -> Vec<(String, i64)> {
        b.figures()
            .map(|f| f.map(|(n, c)| (n.to_owned(), c.count())).unwrap())
            .collect()
    }

    #[test]
    fn a_bucket_keeps_its_figures_in_name_order_and_reads_back_what_it_wrote() {
        let mut b = Bucket::default();
        b.add(b"started", Change::Count(2)).unwrap();
        b.add(b"ended/completed", Change::Count(1)).unwrap();
        b.add(b"cycle", Change::Duration(3600.0)).unwrap();
        b.add(b"field/satisfaction", Change::Number(4.0)).unwrap();
        b.add(b"started", Change::Count(1)).unwrap();
        let bytes = b.encode().unwrap();
        let mut back = Bucket::decode(&bytes).unwrap();
        assert_eq!(
            counts(&back),
            [
                ("cycle".into(), 0),
                ("ended/completed".into(), 1),
                ("field/satisfaction".into(), 0),
                ("started".into(), 3)
            ]
        );
        // Untouched figures are written back byte for byte.
        back.add(b"started", Change::Count(-3)).unwrap();
        let again = Bucket::decode(&back.encode().unwrap()).unwrap();
        assert_eq!(again.len(), 3, "a count back at zero is left out");
        let Some(Ok((_, Cell::Sketch(s)))) = again.figures().next() else {
            panic!("the cycle sketch first")
        };
        assert_eq!((s.count(), s.max()), (1, Some(3600.0)));
    }

    #[test]
    fn a_bucket_whose_last_count_went_back_to_zero_is_not_written() {
        let mut b = Bucket::default();
        b.add(b"running", Change::Count(1)).unwrap();
        b.add(b"running", Change::Count(-1)).unwrap();
        assert!(b.encode().is_none());
    }

    #[test]
    fn bytes_cut_short_or_a_figure_of_another_kind_say_which_figure_and_where() {
        let mut b = Bucket::default();
        b.add(b"started", Change::Count(1)).unwrap();
        let bytes = b.encode().unwrap();
        for cut in 1..bytes.len() {
            assert!(
                matches!(
                    Bucket::decode(&bytes[..cut]),
                    Err(BucketError::Truncated(_))
                ),
                "cut at {cut}"
            );
        }
        let mut back = Bucket::decode(&bytes).unwrap();
        let e = back.add(b"started", Change::Duration(1.0)).unwrap_err();
        assert!(e.to_string().starts_with("figure started:"), "{e}");
    }

    #[test]
    fn a_figure_name_of_any_length_round_trips_and_one_not_utf8_is_refused_by_name() {
        // A stage or tag name longer than a u16 could count: its length still fits.
        let long = "stage/".to_owned() + &"x".repeat(70_000) + "/entered";
        let mut b = Bucket::default();
        b.add(long.as_bytes(), Change::Count(2)).unwrap();
        let back = Bucket::decode(&b.encode().unwrap()).unwrap();
        assert_eq!(counts(&back), [(long, 2)]);

        let e = b.add(b"tag/\xff", Change::Count(1)).unwrap_err();
        assert!(
            matches!(e, BucketError::Name(ref n) if n.starts_with("tag/")),
            "{e}"
        );
        let mut bytes = 5u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"tag/\xff");
        bytes.extend_from_slice(&9u32.to_le_bytes());
        bytes.extend_from_slice(&Cell::Count(1).encode());
        let e = Bucket::decode(&bytes).unwrap_err();
        assert!(e.to_string().contains("is not UTF-8"), "{e}");
    }
}

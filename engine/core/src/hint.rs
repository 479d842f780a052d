//! "Did you mean" hints: the one rule for how close a misspelt name must be to a known one.
//! The structural layer (unknown fields and verbs) and the semantic layer (unknown stage
//! names) both hint through here, so a typo gets the same answer from either.

/// The largest edit distance at which `name` still hints at a candidate: one edit for a
/// name of at most four characters (where two edits turn `end` into `send`, a different
/// word), two for longer names.
pub(crate) fn max_distance(name: &str) -> usize {
    if name.chars().count() <= 4 {
        1
    } else {
        2
    }
}

/// `" (did you mean 'x'?)"` for the closest candidate within [`max_distance`] of `name`
/// (the alphabetically first among equally close ones), or `None`.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = max_distance(name);
    let length = name.chars().count();
    candidates
        .into_iter()
        // The distance is at least the difference in length: skip the quadratic comparison.
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| format!(" (did you mean '{c}'?)"))
}

/// Levenshtein distance in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_name_hints_at_one_edit_and_a_long_name_at_two() {
        assert_eq!(
            did_you_mean("ned", ["end"]),
            None,
            "two edits from a three-letter name"
        );
        assert_eq!(
            did_you_mean("edn", ["end", "send"]).as_deref(),
            None,
            "a transposition is two edits"
        );
        assert_eq!(
            did_you_mean("tga", ["tag"]),
            None,
            "two edits, four characters or fewer"
        );
        assert_eq!(
            did_you_mean("sett", ["set", "call"]).as_deref(),
            Some(" (did you mean 'set'?)")
        );
        assert_eq!(
            did_you_mean("aproved", ["approved", "rejected"]).as_deref(),
            Some(" (did you mean 'approved'?)")
        );
        assert_eq!(
            did_you_mean("aprovd", ["approved"]).as_deref(),
            Some(" (did you mean 'approved'?)"),
            "two edits, five characters or more"
        );
        assert_eq!(did_you_mean("aprvd", ["approved"]), None, "three edits");
    }

    #[test]
    fn the_closest_candidate_wins_and_ties_go_to_the_first_alphabetically() {
        assert_eq!(
            did_you_mean("review", ["reviews", "review_"]).as_deref(),
            Some(" (did you mean 'review_'?)")
        );
        assert_eq!(
            did_you_mean("reviw", ["reviews", "review"]).as_deref(),
            Some(" (did you mean 'review'?)")
        );
    }

    #[test]
    fn distance_counts_characters_not_bytes() {
        assert_eq!(edit_distance("prüfen", "prufen"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}

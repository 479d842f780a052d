//! Fuzzing cursor decoding (issue 12, item 9): whatever string a caller sends as `cursor`,
//! a list answers a page or [`StoreError::BadCursor`] - never a panic - and every cursor
//! the store hands out reads back. `PROPTEST_CASES=100000 cargo test -p waystation-store
//! --test fuzz_cursors` runs it longer (tests/README.md, "Fuzzing: requests").

use proptest::prelude::*;
use waystation_store::{InstanceQuery, MemoryStore, OutboxStatus, Store, StoreError};

fn store() -> MemoryStore {
    MemoryStore::default()
}

/// What a list makes of `cursor`: a page or a bad cursor, nothing else.
fn read(store: &dyn Store, cursor: &str) {
    match store.outbox(OutboxStatus::Pending, Some(cursor), 10) {
        Ok(_) | Err(StoreError::BadCursor) => {}
        Err(other) => panic!("outbox cursor {cursor:?}: {other}"),
    }
    let query = InstanceQuery {
        cursor: Some(cursor.to_owned()),
        ..InstanceQuery::default()
    };
    match store.query(&query) {
        Ok(_) | Err(StoreError::BadCursor) => {}
        Err(other) => panic!("instance cursor {cursor:?}: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_is_a_page_or_a_bad_cursor(cursor in any::<String>()) {
        read(&store(), &cursor);
    }

    #[test]
    fn hex_like_strings_with_a_stray_character_are_a_page_or_a_bad_cursor(
        hex in "[0-9a-f]{0,64}",
        stray in any::<char>(),
        at in 0usize..64,
    ) {
        let mut cursor = hex.clone();
        let at = at.min(cursor.len());
        cursor.insert(at, stray);
        read(&store(), &cursor);
    }
}

#[test]
fn the_strings_of_issue_12_are_bad_cursors() {
    let store: &dyn Store = &store();
    for cursor in [
        "a\u{e9}b",
        "\u{e9}",
        "\u{1f600}\u{1f600}",
        "abc",
        "zz",
        "AB",
        "+1",
        "-1",
    ] {
        assert!(
            matches!(
                store.outbox(OutboxStatus::Pending, Some(cursor), 10),
                Err(StoreError::BadCursor)
            ),
            "{cursor:?}"
        );
    }
}

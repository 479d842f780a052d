//! Every reference workflow validates, and every sample start payload it ships is accepted.

use waystation_fixtures::{load_workflow, root};

#[test]
fn every_reference_workflow_is_valid_and_accepts_its_samples() {
    let dir = root().join("workflows");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let id = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let wf = load_workflow(&id);
        assert_eq!(wf.id(), id, "{} declares another id", path.display());
        let samples = dir.join(format!("{id}.samples"));
        let mut count = 0;
        for sample in
            std::fs::read_dir(&samples).unwrap_or_else(|_| panic!("{id} ships no samples"))
        {
            let sample = sample.unwrap().path();
            let input: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
            if let Err(errors) = wf.check_input(&input) {
                panic!(
                    "{} does not match {id}'s input_schema: {errors:?}",
                    sample.display()
                );
            }
            count += 1;
        }
        assert!(count > 0, "{id} ships no samples");
        checked += 1;
    }
    assert!(
        checked >= 5,
        "expected the five reference workflows, found {checked}"
    );
}

//! AllenNLP's ELMo test fixture (tests/fixtures/models/elmo-fixture/, fetched by
//! `bash tests/setup/fetch-assets.sh elmo-fixture`): its folder, its sentences and the top layer
//! AllenNLP 0.9.0 gives for them (see tests/rust/models/elmo_parity.rs for how it was made).

#![allow(dead_code)]

use webnlu::io::hdf5::Hdf5File;

use crate::op_checks;

/// The fixture's folder, with the reference files checked present.
pub fn fixture_dir() -> std::path::PathBuf {
    op_checks::fixture_model_dir(
        "elmo-fixture",
        &[
            "options.json",
            "lm_weights.hdf5",
            "sentences.json",
            "lm_embeddings_0.hdf5",
            "lm_embeddings_1.hdf5",
            "lm_embeddings_2.hdf5",
        ],
    )
}

/// `sentences.json`: 3 lists of 10 sentences.
pub fn sentences() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(fixture_dir().join("sentences.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `expected[k][i]`: (T, 2P) = concat of the file's forward and backward halves per token.
pub fn expected_top_layers() -> Vec<Vec<(usize, Vec<f32>)>> {
    (0..3)
        .map(|k| {
            let name = format!("lm_embeddings_{k}.hdf5");
            let bytes = std::fs::read(fixture_dir().join(&name)).unwrap();
            let file = Hdf5File::parse(&name, &bytes).unwrap();
            (0..10)
                .map(|i| {
                    let (shape, values) = file.read_dataset_f32(&i.to_string()).unwrap();
                    assert_eq!(shape.len(), 3, "{name}/{i}");
                    let (t, p) = (shape[1], shape[2]);
                    let mut rows = Vec::with_capacity(t * 2 * p);
                    for token in 0..t {
                        rows.extend_from_slice(&values[token * p..(token + 1) * p]);
                        rows.extend_from_slice(&values[(t + token) * p..(t + token + 1) * p]);
                    }
                    (t, rows)
                })
                .collect()
        })
        .collect()
}

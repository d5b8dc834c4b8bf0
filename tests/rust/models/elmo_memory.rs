//! An ELMo load or training run that cannot fit is refused before anything of it is computed
//! (`models/elmo/load.rs`, `tasks/elmo_training_memory.rs`, with the limit lowered on purpose:
//! `set_model_bytes_limit` for this test's thread only): the error names the need in MiB, its
//! parts and what to try, largest part first; a limit of exactly the need lets it go. The
//! training estimate is checked against the GPU memory a run really held (lavapipe).

use crate::op_checks::{self, fixture_model_dir};
use pollster::block_on;
use webnlu::memory_limit::set_model_bytes_limit;
use webnlu::models::elmo::classifier::ElmoTraining;
use webnlu::models::elmo::{parameter_count, ElmoBiLm};
use webnlu::tasks::elmo_examples::RatedSentence;
use webnlu::tasks::elmo_training::{ElmoClassifierRun, ElmoTrainOptions};
use webnlu::Device;

/// `count` sentences of `words` words, labels alternating.
fn sentences(count: usize, words: usize) -> Vec<RatedSentence> {
    let vocabulary = ["a", "fine", "film", "dull", "and", "long", "plot", "acting"];
    (0..count)
        .map(|i| RatedSentence {
            tokens: (0..words)
                .map(|w| vocabulary[(i + 3 * w) % vocabulary.len()].to_string())
                .collect(),
            label: (i % 2) as u32,
        })
        .collect()
}

use crate::op_checks::out_of_memory_refusal as refusal;

/// A run of `training` on `device` started under `limit` (None: no limit).
fn start(
    bilm: &ElmoBiLm,
    training: ElmoTraining,
    train: Vec<RatedSentence>,
    held_out: Vec<RatedSentence>,
    batch_size: usize,
    limit: Option<u64>,
) -> webnlu::Result<ElmoClassifierRun> {
    let options = ElmoTrainOptions {
        training,
        batch_size,
        learning_rate: 1e-2,
        seed: 4,
        ..ElmoTrainOptions::default()
    };
    set_model_bytes_limit(limit);
    let run = block_on(ElmoClassifierRun::start(bilm, 2, train, held_out, options));
    set_model_bytes_limit(None);
    run
}

#[test]
fn a_bilm_over_the_limit_is_refused_before_its_weights_are_read() {
    let dir = fixture_model_dir("elmo-fixture", &["options.json", "lm_weights.hdf5"]);
    let options = std::fs::read_to_string(dir.join("options.json")).unwrap();
    let weights = std::fs::read(dir.join("lm_weights.hdf5")).unwrap();
    // the count options.json gives is the loaded model's
    let bilm = op_checks::load_elmo_fixture(&Device::Cpu);
    let loaded: u64 = (bilm.weights().named().iter())
        .map(|(_, t)| t.numel() as u64)
        .sum();
    let parsed = webnlu::io::ElmoOptions::from_json("options.json", &options).unwrap();
    assert_eq!(parameter_count(&parsed), loaded);
    let load = |limit: Option<u64>| {
        set_model_bytes_limit(limit);
        let result = ElmoBiLm::load(&options, "lm_weights.hdf5", &weights, &Device::Cpu);
        set_model_bytes_limit(None);
        result
    };
    let (need, message) = refusal(load(Some(100_000)));
    assert_eq!(need, 4 * loaded + weights.len() as u64);
    assert!(
        message.contains("loading the ELMo biLM lm_weights.hdf5")
            && message.contains("MiB of weights as f32")
            && message.contains("smaller biLM"),
        "{message}"
    );
    load(Some(need)).expect("a limit of exactly the need loads");
}

#[test]
fn a_training_run_over_the_limit_is_refused_first_and_runs_at_exactly_its_need() {
    let bilm = op_checks::load_elmo_fixture(&Device::Cpu);
    let mut needs = Vec::new();
    for training in [
        ElmoTraining::Head,
        ElmoTraining::Mix,
        ElmoTraining::EndToEnd,
    ] {
        let run = |limit| {
            start(
                &bilm,
                training,
                sentences(24, 12),
                sentences(8, 20),
                8,
                limit,
            )
        };
        let (need, message) = refusal(run(Some(1 << 20)));
        eprintln!("{training}: {message}");
        assert!(
            message.contains(&format!("ELMo training (training '{training}')"))
                && message.contains("at batch 8 x 22 tokens")
                && message.contains("a smaller batchSize (now 8 sentences per step)"),
            "{message}"
        );
        // end to end trains the biLM: its gradients and moments are counted, and training less
        // is advised; the head and the mix train a few hundred values
        assert_eq!(
            message.contains("'mix' or 'head' instead of 'end-to-end'"),
            training == ElmoTraining::EndToEnd,
            "{message}"
        );
        run(Some(need)).expect("a limit of exactly the need runs");
        needs.push(need);
    }
    assert!(needs[2] > needs[1] && needs[1] > needs[0], "{needs:?}");
    // longer sentences need more: the activations grow with the batch's longest
    let longer = start(
        &bilm,
        ElmoTraining::EndToEnd,
        sentences(24, 40),
        vec![],
        8,
        Some(1),
    );
    assert!(refusal(longer).0 > needs[2]);
}

#[test]
fn the_estimate_bounds_what_a_run_holds_on_the_gpu() {
    // The fixture biLM (cell 64, projection 16, 124 filters, 2 highway and 2 LSTM layers) on
    // 16 sentences of 38 words (T = 40): one epoch of one step on a fresh lavapipe device, then
    // the GPU buffers held (every buffer the run made, live or back in the pool at its size
    // class, up to 12.5% over: at least the peak of the live tensors) against the estimate,
    // whose host parts (the layers read back, the cached features) are not on the GPU.
    for training in [ElmoTraining::Head, ElmoTraining::EndToEnd] {
        let (need, message) = {
            let bilm = op_checks::load_elmo_fixture(&op_checks::gpu());
            refusal(start(
                &bilm,
                training,
                sentences(16, 38),
                vec![],
                16,
                Some(1),
            ))
        };
        let device = op_checks::gpu();
        let mut bilm = op_checks::load_elmo_fixture(&device);
        let mut run = start(&bilm, training, sentences(16, 38), vec![], 16, None).unwrap();
        block_on(run.run_epoch(&mut bilm)).unwrap();
        let held = device.memory_usage().gpu_bytes;
        let ratio = need as f64 / held as f64;
        eprintln!("{training}: estimate {need} bytes, held {held}: ratio {ratio:.2}\n{message}");
        assert!(
            (1.0..=1.5).contains(&ratio),
            "estimate / held = {ratio:.2}: {message}"
        );
    }
}

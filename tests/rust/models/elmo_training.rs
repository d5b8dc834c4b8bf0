//! ELMo training: the backward of the whole biLM (scalar mix -> LSTMs -> projection -> highway
//! -> char CNN -> char embedding) against central finite differences on the CPU path, the GPU
//! (lavapipe) against the CPU, and the sentiment classifier on ELMo features.
//! Needs the AllenNLP fixture in tests/fixtures/models/elmo-fixture (`bash tests/fixtures/generate.sh`).

use crate::op_checks;

use webnlu::device::Device;
use webnlu::models::elmo::backward::ElmoActivationGrads;
use webnlu::models::elmo::classifier::{ElmoClassifier, ElmoTraining};
use webnlu::models::elmo::scalar_mix::{
    scalar_mix_backward_cpu, scalar_mix_forward_cpu, ScalarMix, ScalarMixGrads,
};
use webnlu::models::elmo::weights::ElmoWeights;
use webnlu::models::elmo::{ElmoBiLm, ElmoOutput};
use webnlu::tasks::elmo_examples::{parse_rated_sentences, RatedSentence};
use webnlu::tasks::elmo_training::{
    shuffle_and_split, ElmoClassifierRun, ElmoOptimizer, ElmoTrainOptions,
};
use webnlu::tasks::StepsProgress;
use webnlu::train::train_validation_split;

fn load(device: &Device) -> ElmoBiLm {
    op_checks::load_elmo_fixture(device)
}

/// Two rows of different lengths (padding) with a word longer than the 50-character limit.
fn batch() -> (Vec<u16>, usize, usize) {
    let long = "x".repeat(60);
    let sentences: Vec<Vec<&str>> = vec![
        vec!["The", "movie", "was", "great", "!"],
        vec!["Dull", &long],
    ];
    let (ids, steps) = ElmoBiLm::char_ids_with_boundaries(&sentences);
    (ids, sentences.len(), steps)
}

fn mix() -> ScalarMix {
    ScalarMix {
        scalars: vec![0.3, -0.2, 0.1],
        gamma: 0.8,
    }
}

/// The layers (K, N) stacked on the host.
fn stacked(output: &ElmoOutput) -> Vec<f32> {
    output.layers.concat()
}

/// L = sum_i r_i * mix(layers)_i in f64, on the current weights.
fn loss(bilm: &ElmoBiLm, mix: &ScalarMix, r: &[f32]) -> f64 {
    let (ids, b, t) = batch();
    let acts = bilm.forward_tensors(&ids, b, t).unwrap();
    let output = pollster::block_on(acts.read_back()).unwrap();
    let layers = stacked(&output);
    let mut mixed = vec![0.0f32; r.len()];
    scalar_mix_forward_cpu(&mut mixed, &layers, mix).unwrap();
    mixed
        .iter()
        .zip(r)
        .map(|(&y, &w)| y as f64 * w as f64)
        .sum()
}

/// Analytic gradients of [`loss`]: the biLM's parameters and the mix's.
fn gradients(bilm: &ElmoBiLm, mix: &ScalarMix, r: &[f32]) -> (ElmoWeights, ScalarMixGrads) {
    let (ids, b, t) = batch();
    let (acts, trace) = bilm.forward_traced(&ids, b, t, true).unwrap();
    let output = pollster::block_on(acts.read_back()).unwrap();
    let layers = stacked(&output);
    let k = output.layers.len();
    let mut d_layers = vec![0.0f32; layers.len()];
    let mut mix_grads = mix.zero_grads();
    scalar_mix_backward_cpu(Some(&mut d_layers), &mut mix_grads, r, &layers, mix).unwrap();
    let per_layer: Vec<Vec<f32>> = d_layers
        .chunks(layers.len() / k)
        .map(|c| c.to_vec())
        .collect();
    let device = bilm.device().clone();
    let d = ElmoActivationGrads::from_layer_grads(&device, &acts, &per_layer).unwrap();
    let mut grads = bilm.weights().zeros_like(&device).unwrap();
    bilm.backward(&mut grads, d, &acts, trace.as_ref().unwrap())
        .unwrap();
    (grads, mix_grads)
}

fn output_len(bilm: &ElmoBiLm) -> usize {
    let (_, b, t) = batch();
    b * t * bilm.output_dim()
}

/// Central differences of the whole model on the CPU, for a sample of every parameter tensor
/// (its 3 largest analytic gradients and 3 random entries) and of the mix parameters.
///
/// Tolerance and why: the model runs in f32 and L sums ~450 outputs of size O(1), so L
/// carries a rounding noise of a few 1e-6; divided by 2 eps (eps = 3e-3) that is ~1e-3 in the
/// numeric gradient, and the truncation error eps^2 f'''/6 is smaller. Hence
/// |analytic - numeric| <= 5e-3 + 3e-2 max(|a|, |n|) (measured: the worst passing probe uses
/// 0.63 of that bound). The model has kinks (relu in the char CNN and the highways, the max over
/// character positions, the cell and projection clips at 3), and the fixture's pre-activations
/// are small, so some probes straddle one: their central difference averages two slopes. Such a
/// probe is recognised by the analytic gradient matching one of its one-sided differences
/// (measured: 5 of 190 probes, all in the char CNN and highway biases/weights); at most 1 in
/// 10 probes may be such a case, every other must match the central difference.
#[test]
fn whole_model_gradients_match_central_differences_on_the_cpu() {
    central_difference_check(false);
}

/// The same in stateful mode after one call, so that the LSTMs start from non-zero kept
/// states (constants of the loss: AllenNLP detaches them too).
#[test]
fn whole_model_gradients_match_central_differences_from_kept_states() {
    central_difference_check(true);
}

fn central_difference_check(stateful: bool) {
    let mut bilm = load(&Device::Cpu);
    if stateful {
        bilm.set_stateful(true);
        let (ids, b, t) = batch();
        bilm.forward_blocking(&ids, b, t).unwrap();
        let kept = bilm.state().unwrap();
        assert!(kept.hidden[1][1].iter().any(|&v| v != 0.0));
    }
    let mix = mix();
    let r = op_checks::random(output_len(&bilm), 7);
    let (grads, mix_grads) = gradients(&bilm, &mix, &r);
    let eps = 3e-3f32;
    let (abs, rel) = (5e-3f64, 3e-2f64);
    let close = |a: f64, n: f64| (a - n).abs() <= abs + rel * a.abs().max(n.abs());

    // Scalar mix parameters.
    let l0 = loss(&bilm, &mix, &r);
    for j in 0..=mix.scalars.len() {
        let probe = |delta: f32| {
            let mut m = mix.clone();
            if j < m.scalars.len() {
                m.scalars[j] += delta;
            } else {
                m.gamma += delta;
            }
            loss(&bilm, &m, &r)
        };
        let numeric = (probe(eps) - probe(-eps)) / (2.0 * eps as f64);
        let analytic = if j < mix.scalars.len() {
            mix_grads.scalars[j]
        } else {
            mix_grads.gamma
        } as f64;
        assert!(
            close(analytic, numeric),
            "scalar mix parameter {j}: analytic {analytic} numeric {numeric}"
        );
    }

    let analytic: Vec<(String, Vec<f32>)> = grads
        .named()
        .iter()
        .map(|(name, t)| (name.clone(), t.to_vec_blocking().unwrap()))
        .collect();
    let (mut probes, mut kinks) = (0usize, Vec::new());
    // the largest |analytic - numeric| / bound among the probes that pass
    let mut worst = 0.0f64;
    for (index, (name, g)) in analytic.iter().enumerate() {
        assert!(
            g.iter().any(|&v| v != 0.0),
            "{name}: the gradient is all zeros (not reached by the backward)"
        );
        let mut order: Vec<usize> = (0..g.len()).collect();
        order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
        let mut picks: Vec<usize> = order[..3.min(g.len())].to_vec();
        for u in op_checks::random(3, 100 + index as u64) {
            picks.push((((u + 1.0) / 2.0) * g.len() as f32) as usize % g.len());
        }
        picks.sort_unstable();
        picks.dedup();
        for &i in &picks {
            let mut probe = |delta: f32| {
                let mut weights = bilm.weights_mut().named_mut();
                let t = &mut weights[index].1;
                let v = t.cpu_mut().unwrap();
                let keep = v[i];
                v[i] = keep + delta;
                let step = v[i] as f64 - keep as f64;
                drop(weights);
                let l = loss(&bilm, &mix, &r);
                let mut weights = bilm.weights_mut().named_mut();
                weights[index].1.cpu_mut().unwrap()[i] = keep;
                (l, step)
            };
            let (up, step_up) = probe(eps);
            let (down, step_down) = probe(-eps);
            let numeric = (up - down) / (step_up - step_down);
            let a = g[i] as f64;
            probes += 1;
            if close(a, numeric) {
                worst = worst.max((a - numeric).abs() / (abs + rel * a.abs().max(numeric.abs())));
                continue;
            }
            let forward = (up - l0) / step_up;
            let backward = (l0 - down) / -step_down;
            let one_sided = |s: f64| (a - s).abs() <= 2.0 * abs + 2.0 * rel * a.abs().max(s.abs());
            assert!(
                one_sided(forward) || one_sided(backward),
                "{name}[{i}]: analytic {a} vs central {numeric} (one-sided {forward}, {backward})"
            );
            kinks.push(format!(
                "{name}[{i}]: a {a:.5} c {numeric:.5} f {forward:.5} b {backward:.5}"
            ));
        }
    }
    eprintln!(
        "finite differences: {probes} probes over {} tensors, worst passing error {worst:.2} of \
         the bound, {} at a kink: {kinks:#?}",
        analytic.len(),
        kinks.len()
    );
    assert!(
        kinks.len() * 10 <= probes,
        "too many probes at kinks: {kinks:?}"
    );
}

/// The same forward + backward on the GPU (lavapipe) and the CPU give the same gradients.
/// Tolerance: the GPU sums in another order (f32), through 2 LSTM layers of ~7 steps and the
/// char CNN; parameter gradients are sums over up to N*W terms: 1e-4 absolute + 1e-3 relative.
#[test]
fn gpu_gradients_match_cpu() {
    let mix = mix();
    let cpu = load(&Device::Cpu);
    let r = op_checks::random(output_len(&cpu), 11);
    let (cpu_grads, cpu_mix) = gradients(&cpu, &mix, &r);
    let gpu = load(&op_checks::gpu());
    let (gpu_grads, gpu_mix) = gradients(&gpu, &mix, &r);
    op_checks::assert_close(
        "mix scalars",
        &gpu_mix.scalars,
        &cpu_mix.scalars,
        1e-4,
        1e-3,
    );
    for ((name, c), (_, g)) in cpu_grads.named().iter().zip(gpu_grads.named()) {
        let c = c.to_vec_blocking().unwrap();
        let g = g.to_vec_blocking().unwrap();
        let scale = c.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        op_checks::assert_close(name, &g, &c, 1e-4 + 1e-4 * scale, 1e-3);
    }
}

fn vader_movie_reviews() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models/vader/movieReviewSnippets_GroundTruth.txt");
    assert!(
        path.is_file(),
        "missing {} (VADER's movie-review sentences): run `bash tests/fixtures/generate.sh`",
        path.display()
    );
    path
}

#[test]
fn rated_sentences_parse_and_bad_lines_are_named() {
    let text = "1\t2.5\tA fine film .\r\n2\t-1.25\tDull\r\n3\t0\tNeither\r\n\r\n4\t-0.5\t  \r\n";
    let rows = parse_rated_sentences("t.tsv", text).unwrap();
    assert_eq!(rows.len(), 2, "rating 0 and empty text are left out");
    assert_eq!(rows[0].tokens, ["A", "fine", "film", "."]);
    assert_eq!((rows[0].label, rows[1].label), (1, 0));
    let error = parse_rated_sentences("t.tsv", "1\tgood\tx\n").unwrap_err();
    assert!(error.to_string().contains("t.tsv") && error.to_string().contains("line 1"));
    let error = parse_rated_sentences("t.tsv", "1 2.0 no tabs\n").unwrap_err();
    assert!(error.to_string().contains("line 1"));
    let all = parse_rated_sentences(
        "movie",
        &std::fs::read_to_string(vader_movie_reviews()).unwrap(),
    )
    .unwrap();
    assert!(
        all.len() > 10_000,
        "{} labelled movie-review sentences",
        all.len()
    );
}

/// End to end on one batch: repeated steps must lower that batch's loss, which needs the
/// gradient to flow through the pooling, the mix and the whole biLM (the head alone is
/// checked by the CLI test below), and the biLM's parameters must move. Then the same for the
/// head + mix on frozen features.
#[test]
fn end_to_end_steps_lower_the_loss_and_update_the_bilm() {
    let mut bilm = load(&Device::Cpu);
    let before = bilm.weights().named()[0].1.to_vec_blocking().unwrap();
    let sentences: Vec<Vec<&str>> = vec![
        vec!["A", "wonderful", ",", "moving", "film"],
        vec!["Tedious", "and", "dull"],
        vec!["Great", "fun"],
        vec!["The", "worst", "movie", "of", "the", "year"],
    ];
    let labels = [1, 0, 1, 0];
    let lr = 1e-2;
    let mut classifier = ElmoClassifier::new(&bilm, 2, ElmoTraining::EndToEnd, 3).unwrap();
    let mut optimizer = ElmoOptimizer::new(lr);
    let mut losses = Vec::new();
    for _ in 0..8 {
        let result = pollster::block_on(optimizer.train_step_end_to_end(
            &mut classifier,
            &mut bilm,
            &sentences,
            &labels,
        ))
        .unwrap();
        losses.push(result.mean_loss());
    }
    assert!(losses[7] < 0.5 * losses[0], "loss did not fall: {losses:?}");
    let after = bilm.weights().named()[0].1.to_vec_blocking().unwrap();
    assert_ne!(before, after, "the char embedding did not move");
    // With the mix: its weights move and the loss falls, on pooled features computed once.
    let pooled = pollster::block_on(ElmoClassifier::pooled_layers(&bilm, &sentences)).unwrap();
    let mut with_mix = ElmoClassifier::new(&bilm, 2, ElmoTraining::Mix, 3).unwrap();
    let mut mix_optimizer = ElmoOptimizer::new(lr);
    let first = mix_optimizer
        .train_step(&mut with_mix, &pooled, &labels)
        .unwrap()
        .mean_loss();
    for _ in 0..20 {
        mix_optimizer
            .train_step(&mut with_mix, &pooled, &labels)
            .unwrap();
    }
    let last = with_mix.evaluate(&pooled, &labels).unwrap().mean_loss();
    assert!(last < first, "mix training: loss {first} -> {last}");
    assert_ne!(with_mix.mix.scalars, vec![0.0; 3], "the mix did not move");
    assert!(pollster::block_on(mix_optimizer.train_step_end_to_end(
        &mut with_mix,
        &mut bilm,
        &sentences,
        &labels
    ))
    .is_err());
    // The head-only classifier refuses end-to-end steps, and wrong labels are named.
    let mut head = ElmoClassifier::new(&bilm, 2, ElmoTraining::Head, 3).unwrap();
    let mut head_optimizer = ElmoOptimizer::new(lr);
    assert!(pollster::block_on(
        head_optimizer.train_step_end_to_end(&mut head, &mut bilm, &sentences, &labels)
    )
    .is_err());
    let error = head_optimizer
        .train_step(&mut head, &pooled, &[0, 1, 2, 0])
        .unwrap_err();
    assert!(error.to_string().contains("label 2"), "{error}");
}

/// The training run behind `webnlu elmo-train` and the browser's `elmo.trainClassifier`, on
/// 96 movie-review sentences (64 train, 32 held out), head + mix, two epochs: the CPU and the
/// GPU (lavapipe) give the same epochs, the probabilities agree with the measured held-out
/// accuracy, and bad runs are refused by name. Tolerance 1e-4 on losses (mean of ~64 f32
/// cross-entropies of O(1) whose features differ by ~1e-6 between devices) and exact on
/// accuracies away from ties.
#[test]
fn training_run_gives_the_same_epochs_on_both_devices_and_predicts() {
    let all = parse_rated_sentences(
        "movie",
        &std::fs::read_to_string(vader_movie_reviews()).unwrap(),
    )
    .unwrap();
    let options = ElmoTrainOptions {
        training: ElmoTraining::Mix,
        batch_size: 16,
        learning_rate: 1e-2,
        seed: 5,
        ..ElmoTrainOptions::default()
    };
    let run_on = |device: &Device| {
        let mut bilm = load(device);
        let (train, held) = shuffle_and_split(all.clone(), 64, 32, 7).unwrap();
        let held_words: Vec<Vec<String>> = held.iter().map(|e| e.tokens.clone()).collect();
        let held_labels: Vec<u32> = held.iter().map(|e| e.label).collect();
        let mut run =
            pollster::block_on(ElmoClassifierRun::start(&bilm, 2, train, held, options)).unwrap();
        let reports: Vec<_> = (0..2)
            .map(|_| pollster::block_on(run.run_epoch(&mut bilm)).unwrap())
            .collect();
        let words: Vec<Vec<&str>> = held_words
            .iter()
            .map(|s| s.iter().map(String::as_str).collect())
            .collect();
        let probabilities = pollster::block_on(run.predict(&bilm, &words)).unwrap();
        (reports, probabilities, held_labels)
    };
    let (cpu, cpu_probabilities, labels) = run_on(&Device::Cpu);
    let (gpu, gpu_probabilities, _) = run_on(&op_checks::gpu());
    eprintln!("cpu epochs {cpu:?}\ngpu epochs {gpu:?}");
    for (c, g) in cpu.iter().zip(&gpu) {
        assert_eq!(c.epoch, g.epoch);
        assert!((c.train_loss - g.train_loss).abs() < 1e-4, "{c:?} vs {g:?}");
        assert!((c.test_loss.unwrap() - g.test_loss.unwrap()).abs() < 1e-4);
        assert_eq!(c.test_accuracy, g.test_accuracy);
        assert_eq!(c.test_chance, g.test_chance);
    }
    assert!(cpu[1].train_loss < cpu[0].train_loss, "{cpu:?}");
    assert_ne!(cpu[1].mix_weights, vec![1.0 / 3.0; 3], "the mix trains");
    op_checks::assert_close(
        "probabilities",
        &gpu_probabilities,
        &cpu_probabilities,
        1e-5,
        1e-4,
    );
    // The probabilities are the held-out predictions: their accuracy is the report's.
    let correct = cpu_probabilities
        .chunks(2)
        .zip(&labels)
        .filter(|(p, &label)| (p[1] > p[0]) as u32 == label)
        .count();
    assert_eq!(correct as f64 / 32.0, cpu[1].test_accuracy.unwrap());
    assert!(cpu_probabilities
        .chunks(2)
        .all(|p| (p[0] + p[1] - 1.0).abs() < 1e-6));

    // Refused by name: no sentences, a label beyond the classes, a stateful biLM, too few.
    let mut bilm = load(&Device::Cpu);
    let start = |bilm: &ElmoBiLm, train, classes| {
        pollster::block_on(ElmoClassifierRun::start(
            bilm,
            classes,
            train,
            Vec::new(),
            options,
        ))
        .err()
        .expect("refused")
        .to_string()
    };
    assert!(start(&bilm, Vec::new(), 2).contains("no sentences"));
    assert!(start(&bilm, all[..4].to_vec(), 1).contains("label 1"));
    bilm.set_stateful(true);
    assert!(start(&bilm, all[..4].to_vec(), 2).contains("stateless"));
    let error = shuffle_and_split(all[..10].to_vec(), 8, 4, 1).unwrap_err();
    assert!(
        error.to_string().contains("10 labelled sentences"),
        "{error}"
    );
}

/// An epoch taken a few optimizer steps at a time (`run_steps`, what the browser's engine does
/// so that JavaScript can report progress and stop between calls) is the epoch `run_epoch`
/// runs whole: the same reports and the same predictions bit for bit, for the head, the head +
/// mix and end to end (the biLM trained), on the CPU and the GPU (lavapipe). 40 training
/// sentences in batches of 8: 5 steps an epoch.
#[test]
fn elmo_training_in_steps_is_the_epochs_run_whole() {
    let all = parse_rated_sentences(
        "movie",
        &std::fs::read_to_string(vader_movie_reviews()).unwrap(),
    )
    .unwrap();
    let probe: Vec<Vec<&str>> = vec![vec!["A", "fine", "film"], vec!["Dull", "and", "long"]];
    for device in [Device::Cpu, op_checks::gpu()] {
        for training in [
            ElmoTraining::Head,
            ElmoTraining::Mix,
            ElmoTraining::EndToEnd,
        ] {
            let options = ElmoTrainOptions {
                training,
                batch_size: 8,
                learning_rate: 1e-2,
                seed: 3,
                ..ElmoTrainOptions::default()
            };
            let start = |bilm: &ElmoBiLm| {
                let (train, held) = shuffle_and_split(all.clone(), 40, 16, 9).unwrap();
                pollster::block_on(ElmoClassifierRun::start(bilm, 2, train, held, options)).unwrap()
            };
            let mut bilm = load(&device);
            let mut run = start(&bilm);
            assert_eq!(run.steps_per_epoch(), 5);
            let whole: Vec<_> = (0..2)
                .map(|_| pollster::block_on(run.run_epoch(&mut bilm)).unwrap())
                .collect();
            let whole_predicted = pollster::block_on(run.predict(&bilm, &probe)).unwrap();

            let mut bilm = load(&device);
            let mut run = start(&bilm);
            let (mut in_steps, mut seen) = (Vec::new(), Vec::new());
            while in_steps.len() < 2 {
                match pollster::block_on(run.run_steps(&mut bilm, 2)).unwrap() {
                    StepsProgress::Running { epoch, done, total } => {
                        seen.push((epoch, done, total))
                    }
                    StepsProgress::EpochDone(report) => in_steps.push(report),
                }
            }
            assert_eq!(seen, [(1, 2, 5), (1, 4, 5), (2, 2, 5), (2, 4, 5)]);
            assert_eq!(in_steps, whole, "{training:?} on {device:?}");
            let predicted = pollster::block_on(run.predict(&bilm, &probe)).unwrap();
            assert_eq!(predicted, whole_predicted, "{training:?} on {device:?}");
        }
    }
}

/// The split is `train::train_validation_split`'s: `shuffle_and_split` of all the sentences
/// holds out the ones that the shared split holds out with that fraction, in the same order.
#[test]
fn elmo_split_is_the_shared_train_validation_split() {
    let all: Vec<RatedSentence> = (0..50)
        .map(|i| RatedSentence {
            tokens: vec![format!("w{i}")],
            label: i % 2,
        })
        .collect();
    let (train, held) = shuffle_and_split(all, 40, 10, 7).unwrap();
    let split = train_validation_split(50, 0.2, 7).unwrap();
    let words = |sentences: &[RatedSentence]| -> Vec<String> {
        sentences.iter().map(|e| e.tokens[0].clone()).collect()
    };
    let named = |rows: &[usize]| -> Vec<String> { rows.iter().map(|i| format!("w{i}")).collect() };
    assert_eq!(words(&train), named(&split.train));
    assert_eq!(words(&held), named(&split.validation));
}

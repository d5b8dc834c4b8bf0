//! safetensors received as a stream (`WeightStream`, what the browser package loads a fetched
//! or local model.safetensors with): a model streamed in chunks cut at every awkward place (one
//! byte at a time, inside the length prefix, inside the header, exactly at the data start and
//! at every tensor border, inside tensors) has bit for bit the weights of one loaded from the
//! whole file, on the CPU, on the GPU (where f32 tensors are written into their buffers, row
//! shards too, block by block while streaming) and in fp16, bf16 and int8 (the layer matrices
//! converted as they complete, on either device); a NaN streamed to the GPU is refused by the
//! loader as in the whole file; F16/BF16/F64 tensors keep their bytes; hostile streams (truncated, too long, a header
//! that is not JSON, offsets out of range, overlapping tensors) are refused naming the file and
//! the tensor.

use crate::io_reference_summary::fixture_bytes;
use crate::op_checks::{gpu, gpu_capped};
use webnlu::device::Device;
use webnlu::io::{ModelFiles, RandomBert, SafeTensors, StreamedWeights, WeightStream};
use webnlu::models::BertModel;
use webnlu::ops::matmul::WeightDtype;

const FILE: &str = "model files/model.safetensors";

/// A small random BERT with its masked-LM head: files and its model.safetensors bytes.
fn small_bert() -> (ModelFiles, Vec<u8>) {
    let shape = RandomBert {
        layers: 2,
        hidden: 32,
        heads: 4,
        intermediate: 48,
        vocab: 40,
        positions: 16,
        masked_lm: true,
    };
    let files = shape.files(5).unwrap();
    let bytes = files.get("model.safetensors").unwrap().to_vec();
    (files, bytes)
}

/// `bytes` pushed in the chunks that end at `cuts` (then the rest), announced as `total`.
fn stream(
    bytes: &[u8],
    cuts: &[usize],
    total: Option<u64>,
    upload_to: Option<Device>,
) -> webnlu::Result<StreamedWeights> {
    let mut stream = WeightStream::new(FILE, total, upload_to);
    let mut at = 0;
    for &cut in cuts.iter().chain(&[bytes.len()]) {
        let cut = cut.clamp(at, bytes.len());
        stream.push(&bytes[at..cut])?;
        at = cut;
    }
    assert_eq!(stream.received(), bytes.len() as u64);
    stream.finish()
}

/// The chunk ends that matter: inside the length prefix, inside and at the end of the header,
/// every tensor's first, second and last byte and a byte past it.
fn awkward_cuts(bytes: &[u8]) -> Vec<usize> {
    let parsed = SafeTensors::parse(FILE, bytes).unwrap();
    let data_start = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut cuts = vec![3, 8, 9, data_start - 1, data_start];
    let mut offset = data_start;
    for tensor in &parsed.tensors {
        let n = tensor.data.len();
        cuts.extend([offset + 1, offset + 2, offset + n - 1, offset + n]);
        offset += n;
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The model's parameters, read back: (name, the tensor's own name, shape, values as bits).
type Parameter = (String, String, Vec<usize>, Vec<u32>);

fn parameters(model: &BertModel) -> Vec<Parameter> {
    (model.named_parameters().into_iter())
        .map(|(name, t)| {
            let bits = t
                .to_vec_blocking()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            (name, t.name().to_string(), t.shape().to_vec(), bits)
        })
        .collect()
}

fn streamed_files(whole: &ModelFiles, weights: StreamedWeights) -> ModelFiles {
    let mut files = ModelFiles::new("model files");
    for name in whole.names() {
        if name != "model.safetensors" {
            files.insert(name, whole.get(name).unwrap().to_vec());
        }
    }
    files.insert_streamed("model.safetensors", weights);
    files
}

#[test]
fn a_model_streamed_in_awkward_chunks_equals_one_loaded_from_the_whole_file() {
    let (whole, bytes) = small_bert();
    let want = parameters(&BertModel::load(&whole, &Device::Cpu).unwrap());
    let one_byte_chunks: Vec<usize> = (1..bytes.len()).collect();
    let every_7: Vec<usize> = (7..bytes.len()).step_by(7).collect();
    let patterns = [awkward_cuts(&bytes), one_byte_chunks, every_7, vec![]];
    for (i, cuts) in patterns.iter().enumerate() {
        for total in [Some(bytes.len() as u64), None] {
            let weights = stream(&bytes, cuts, total, None).unwrap();
            let files = streamed_files(&whole, weights);
            let got = parameters(&BertModel::load(&files, &Device::Cpu).unwrap());
            assert_eq!(got, want, "cut pattern {i}, total {total:?}");
        }
    }
}

#[test]
fn on_the_gpu_streamed_tensors_are_uploaded_as_they_complete_and_equal_the_whole_files() {
    let (whole, bytes) = small_bert();
    let device = gpu();
    let want = parameters(&BertModel::load(&whole, &device).unwrap());
    let weights = stream(&bytes, &awkward_cuts(&bytes), None, Some(device.clone())).unwrap();
    // every F32 tensor is on the GPU already: its values are not in memory
    assert_eq!(weights.bytes_in_memory(), 0);
    let files = streamed_files(&whole, weights);
    let model = BertModel::load(&files, &device).unwrap();
    // the same values under the same names (the uploaded tensors renamed as the loader names)
    assert_eq!(parameters(&model), want);
}

#[test]
fn a_streamed_model_loads_in_fp16_like_the_whole_file() {
    let (whole, bytes) = small_bert();
    for device in [Device::Cpu, gpu()] {
        let mut want = BertModel::load_as(&whole, &device, WeightDtype::Fp16).unwrap();
        // a GPU fp16 load keeps the tensors in memory (the layer matrices become 16-bit)
        let weights = stream(&bytes, &awkward_cuts(&bytes), None, None).unwrap();
        let files = streamed_files(&whole, weights);
        let mut got = BertModel::load_as(&files, &device, WeightDtype::Fp16).unwrap();
        assert_eq!(got.weight_bytes(), want.weight_bytes());
        assert_eq!(parameters(&got), parameters(&want), "{}", device.kind());
    }
}

/// `bytes` streamed for a model on `device` held in `dtype`, with the model's plan (the layer
/// matrices converted as they complete), in the chunks that end at `cuts`.
fn stream_planned(
    whole: &ModelFiles,
    bytes: &[u8],
    cuts: &[usize],
    device: &Device,
    dtype: WeightDtype,
) -> webnlu::Result<StreamedWeights> {
    let mut config = ModelFiles::new("model files");
    config.insert("config.json", whole.get("config.json").unwrap().to_vec());
    let mut stream = WeightStream::new(FILE, Some(bytes.len() as u64), Some(device.clone()))
        .plan_with(
            dtype,
            Box::new(move |entries| BertModel::plan_streamed_load(&config, entries, dtype)),
        );
    let mut at = 0;
    for &cut in cuts.iter().chain(&[bytes.len()]) {
        let cut = cut.clamp(at, bytes.len());
        stream.push(&bytes[at..cut])?;
        at = cut;
    }
    stream.finish()
}

/// Every layer matrix of `model` widened to f32, as bits (name, bits), and its f32 parameters.
fn all_weights(model: &BertModel) -> (Vec<(String, Vec<u32>)>, Vec<Parameter>) {
    let mut matrices = Vec::new();
    for layer in &model.layers {
        for linear in layer.linears() {
            let half = linear.half_weight().expect("held compressed");
            let widened = pollster::block_on(half.to_f32_tensor()).unwrap();
            let bits = (widened.to_vec_blocking().unwrap().iter())
                .map(|v| v.to_bits())
                .collect();
            matrices.push((half.name().to_string(), bits));
        }
    }
    (matrices, parameters(model))
}

#[test]
fn with_the_models_plan_the_layer_matrices_are_compressed_as_they_complete_on_both_devices() {
    let (whole, bytes) = small_bert();
    for device in [Device::Cpu, gpu()] {
        for dtype in [WeightDtype::Fp16, WeightDtype::Bf16, WeightDtype::Int8] {
            let label = format!("{} {}", device.kind(), dtype.name());
            let mut want = BertModel::load_as(&whole, &device, dtype).unwrap();
            let weights =
                stream_planned(&whole, &bytes, &awkward_cuts(&bytes), &device, dtype).unwrap();
            // nothing waits as stored (every tensor of this file is F32); on the GPU no f32
            // value is left in memory either: the matrices are compressed, the rest uploaded
            assert_eq!(weights.bytes_in_memory(), 0, "{label}");
            let files = streamed_files(&whole, weights);
            let mut got = BertModel::load_as(&files, &device, dtype).unwrap();
            assert_eq!(got.weight_bytes(), want.weight_bytes(), "{label}");
            assert_eq!(all_weights(&got), all_weights(&want), "{label}");
        }
    }
}

#[test]
fn the_plan_names_every_layer_matrix_of_bert_and_distilbert_checkpoints_as_saved() {
    use webnlu::io::safetensors::{header_length, parse_header};
    // transformers' own files (prefixed names: bert.encoder.layer.0.attention.self.query.weight,
    // distilbert.transformer.layer.0.attention.q_lin.weight), two layers each
    for name in ["bert-random", "distilbert-random"] {
        let dir = crate::io_reference_summary::repo_path(&format!(
            "tests/fixtures/bert-reference/random/{name}"
        ));
        let whole = ModelFiles::from_dir(&dir).unwrap();
        let bytes = whole.get("model.safetensors").unwrap();
        let header_len = header_length(FILE, &bytes[..8], bytes.len() as u64).unwrap() as usize;
        let data_len = (bytes.len() - 8 - header_len) as u64;
        let entries = parse_header(FILE, &bytes[8..8 + header_len], data_len)
            .unwrap()
            .entries;
        let planned = BertModel::plan_streamed_load(&whole, &entries, WeightDtype::Int8).unwrap();
        let mut names: Vec<&str> = planned.iter().map(|&i| entries[i].name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names.len(), 12, "{name}: {names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(".weight") && n.contains("layer.")),
            "{name}: {names:?}"
        );
        let none = BertModel::plan_streamed_load(&whole, &entries, WeightDtype::Fp32).unwrap();
        assert!(none.is_empty(), "{name}: fp32 compresses nothing");
        // and the streamed int8 load is the whole file's
        let device = Device::Cpu;
        let mut want = BertModel::load_as(&whole, &device, WeightDtype::Int8).unwrap();
        let weights = stream_planned(
            &whole,
            bytes,
            &awkward_cuts(bytes),
            &device,
            WeightDtype::Int8,
        )
        .unwrap();
        let mut got =
            BertModel::load_as(&streamed_files(&whole, weights), &device, WeightDtype::Int8)
                .unwrap();
        assert_eq!(got.weight_bytes(), want.weight_bytes(), "{name}");
        assert_eq!(all_weights(&got), all_weights(&want), "{name}");
    }
}

#[test]
fn a_planned_matrix_is_handed_over_once_and_not_as_values() {
    let (whole, bytes) = small_bert();
    let weights = stream_planned(&whole, &bytes, &[], &Device::Cpu, WeightDtype::Fp16).unwrap();
    let name = "encoder.layer.1.intermediate.dense.weight";
    let error = weights.take_f32(name, &[48, 32]).unwrap_err().to_string();
    assert!(
        error.contains(name) && error.contains("converted to 16 bits while streaming"),
        "{error}"
    );
    // asked in another dtype than the plan's: not taken (the loader converts from the file)
    let other = weights.take_compressed(name, &[48, 32], WeightDtype::Int8);
    assert!(other.unwrap().is_none());
}

#[test]
fn a_tensor_larger_than_a_block_streams_into_its_row_shards_block_by_block() {
    use webnlu::io::weight_stream::UPLOAD_BLOCK_VALUES;
    // word embeddings of 33,000 x 40 = 1.32 M values: more than one block (2 writes), and
    // with bindings capped at 1 MiB, 6 row shards of 6,553 rows (the last 235) whose
    // borders fall inside blocks
    let shape = RandomBert {
        layers: 1,
        hidden: 40,
        heads: 4,
        intermediate: 24,
        vocab: 33_000,
        positions: 16,
        masked_lm: true,
    };
    assert!(shape.vocab * shape.hidden > UPLOAD_BLOCK_VALUES);
    let whole = shape.files(9).unwrap();
    let bytes = whole.get("model.safetensors").unwrap().to_vec();
    let device = gpu_capped(1 << 20);
    let want = parameters(&BertModel::load(&whole, &device).unwrap());
    // odd chunk sizes, so values are cut between chunks too
    let cuts: Vec<usize> = (1..bytes.len()).step_by(262_147).collect();
    let weights = stream(&bytes, &cuts, None, Some(device.clone())).unwrap();
    assert_eq!(weights.bytes_in_memory(), 0);
    let files = streamed_files(&whole, weights);
    let model = BertModel::load(&files, &device).unwrap();
    assert_eq!(model.embeddings.word.shard_count(), 6);
    assert_eq!(parameters(&model), want);
}

#[test]
fn a_nan_streamed_to_the_gpu_is_refused_by_the_loader_as_the_whole_file_is() {
    let (whole, mut bytes) = small_bert();
    let sizes: Vec<(String, usize)> = (SafeTensors::parse(FILE, &bytes).unwrap().tensors)
        .iter()
        .map(|t| (t.name.clone(), t.data.len()))
        .collect();
    let data_start = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // a NaN and an infinity in the position embeddings, at flat indices 5 and 9
    let mut offset = data_start;
    for (name, size) in sizes {
        if name.ends_with("position_embeddings.weight") {
            bytes[offset + 20..offset + 24].copy_from_slice(&f32::NAN.to_le_bytes());
            bytes[offset + 36..offset + 40].copy_from_slice(&f32::INFINITY.to_le_bytes());
        }
        offset += size;
    }
    let mut whole_files = ModelFiles::new("model files");
    for name in whole.names() {
        let data = if name == "model.safetensors" {
            bytes.clone()
        } else {
            whole.get(name).unwrap().to_vec()
        };
        whole_files.insert(name, data);
    }
    let device = gpu();
    let want = BertModel::load(&whole_files, &device)
        .unwrap_err()
        .to_string();
    let weights = stream(&bytes, &awkward_cuts(&bytes), None, Some(device.clone())).unwrap();
    let got = BertModel::load(&streamed_files(&whole, weights), &device)
        .unwrap_err()
        .to_string();
    assert_eq!(got, want);
    assert!(
        got.contains("position_embeddings") && got.contains("2 of its") && got.contains("index 5"),
        "{got}"
    );
}

#[test]
fn f16_bf16_and_f64_tensors_keep_their_bytes_and_convert_as_the_parsed_files() {
    let bytes = fixture_bytes("tests/fixtures/generated/io/python_written.safetensors");
    let parsed = SafeTensors::parse(FILE, &bytes).unwrap();
    let weights = stream(&bytes, &awkward_cuts(&bytes), None, Some(Device::Cpu)).unwrap();
    for tensor in &parsed.tensors {
        let view = weights.take_view(&tensor.name, &tensor.shape).unwrap();
        assert_eq!(
            (view.dtype, &view.data),
            (tensor.dtype, &tensor.data),
            "{}",
            tensor.name
        );
        let again = weights.take_f32(&tensor.name, &tensor.shape).unwrap_err();
        assert!(again.to_string().contains("read twice"), "{again}");
    }
    let weights = stream(&bytes, &[], None, None).unwrap();
    for tensor in parsed.tensors.iter().filter(|t| t.to_f32().is_ok()) {
        let got = weights.take_f32(&tensor.name, &tensor.shape).unwrap();
        assert_eq!(
            got,
            tensor.to_f32().unwrap().into_owned(),
            "{}",
            tensor.name
        );
    }
}

/// The error of streaming `bytes` whole (announced as `total`), as text.
fn stream_error(bytes: &[u8], total: Option<u64>) -> String {
    match stream(bytes, &[], total, None) {
        Ok(_) => panic!("a hostile stream was accepted"),
        Err(error) => error.to_string(),
    }
}

/// A file of one header and `data` bytes.
fn file_with_header(json: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn hostile_streams_are_refused_naming_the_file_and_the_tensor() {
    let (_, bytes) = small_bert();
    let n = bytes.len();
    let parsed = SafeTensors::parse(FILE, &bytes).unwrap();
    let last = &parsed.tensors.last().unwrap().name;

    // truncated: in the length prefix, in the header, in the last tensor
    let error = stream_error(&bytes[..5], None);
    assert!(
        error.contains(FILE) && error.contains("after 5 bytes"),
        "{error}"
    );
    let error = stream_error(&bytes[..20], None);
    assert!(error.contains("before its header was complete"), "{error}");
    let error = stream_error(&bytes[..n - 3], None);
    assert!(
        error.contains("truncated") && error.contains(&format!("in tensor {last}")),
        "{error}"
    );
    // announced longer than it is, or longer than announced
    let error = stream_error(&bytes, Some(n as u64 + 8));
    assert!(
        error.contains(&format!("{} of the file's {}", n, n + 8)),
        "{error}"
    );
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4]);
    let error = stream_error(&longer, Some(n as u64));
    assert!(
        error.contains(&format!("more than the {n} bytes announced")),
        "{error}"
    );

    // a header that is not JSON, a header longer than the file, offsets out of range, overlap
    let error = stream_error(&file_with_header("{not json", &[]), None);
    assert!(
        error.contains(FILE) && error.contains("not valid JSON"),
        "{error}"
    );
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&(n as u64).to_le_bytes());
    let error = stream_error(&huge, Some(n as u64));
    assert!(error.contains("header length"), "{error}");
    let outside = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let error = stream_error(
        &file_with_header(outside, &[0; 4]),
        Some(outside.len() as u64 + 12),
    );
    assert!(
        error.contains("tensor a") && error.contains("outside"),
        "{error}"
    );
    let overlap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                      "b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let error = stream_error(&file_with_header(overlap, &[0; 8]), None);
    assert!(error.contains("tensors a and b overlap"), "{error}");
    // streamed without the length announced, a tensor out of range shows as a truncation
    let error = stream_error(&file_with_header(outside, &[0; 4]), None);
    assert!(
        error.contains("truncated") && error.contains("in tensor a (4 of its 8 bytes)"),
        "{error}"
    );
}

#[test]
fn a_wrong_shape_or_a_missing_tensor_in_a_streamed_file_is_named_by_the_loader() {
    let (whole, bytes) = small_bert();
    let weights = stream(&bytes, &[], None, None).unwrap();
    let error = weights
        .take_f32("embeddings.word_embeddings.weight", &[41, 32])
        .unwrap_err();
    assert!(error.to_string().contains("word_embeddings"), "{error}");
    let error = weights.take_f32("no.such.tensor", &[1]).unwrap_err();
    assert!(
        error.to_string().contains("no tensor no.such.tensor"),
        "{error}"
    );
    // the loader takes every tensor once; one taken before is refused by name
    let files = streamed_files(&whole, weights);
    let _ = files
        .weight_source()
        .unwrap()
        .read_f32("embeddings.LayerNorm.weight", &[32]);
    let error = BertModel::load(&files, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("embeddings.LayerNorm.weight") && error.contains("read twice"),
        "{error}"
    );
}

#[test]
fn a_streamed_load_over_the_memory_limit_is_refused_at_the_header_before_any_tensor_byte() {
    use webnlu::memory_limit::set_model_bytes_limit;
    let (whole, bytes) = small_bert();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let config = {
        let mut files = ModelFiles::new("model files");
        files.insert("config.json", whole.get("config.json").unwrap().to_vec());
        files
    };
    let limited = |limit: Option<u64>, dtype: WeightDtype| {
        let mut config_files = ModelFiles::new("model files");
        config_files.insert("config.json", config.get("config.json").unwrap().to_vec());
        let mut stream = WeightStream::new(FILE, None, None).plan_with(
            dtype,
            Box::new(move |entries| BertModel::plan_streamed_load(&config_files, entries, dtype)),
        );
        set_model_bytes_limit(limit);
        // the header alone: the check runs as soon as it is complete
        let result = stream.push(&bytes[..header_end]);
        set_model_bytes_limit(None);
        result.map(|()| stream)
    };
    let error = limited(Some(1000), WeightDtype::Fp32).err().unwrap();
    assert!(
        matches!(error, webnlu::Error::OutOfMemory { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("loading the model model files") && message.contains("fp16"),
        "{message}"
    );
    // the need is the one the whole-file load reports (no file bytes in memory: F32 only)
    let need = |e: webnlu::Error| match e {
        webnlu::Error::OutOfMemory { bytes, .. } => bytes,
        other => panic!("not a refusal: {other}"),
    };
    let streamed_need = need(limited(Some(1000), WeightDtype::Fp16).err().unwrap());
    let mut on_disk = ModelFiles::new("model files");
    on_disk.insert("config.json", config.get("config.json").unwrap().to_vec());
    let weights = stream(&bytes, &[], None, None).unwrap();
    on_disk.insert_streamed("model.safetensors", weights);
    set_model_bytes_limit(Some(1000));
    let loaded = BertModel::load_as(&on_disk, &Device::Cpu, WeightDtype::Fp16);
    set_model_bytes_limit(None);
    assert_eq!(streamed_need, need(loaded.err().unwrap()));
    // a limit of exactly the need lets the stream go on
    let mut stream = limited(Some(streamed_need), WeightDtype::Fp16).unwrap();
    stream.push(&bytes[header_end..]).unwrap();
    stream.finish().unwrap();
}

//! Loading ELMo's biLM: AllenNLP's `options.json` and the `.hdf5` weights, each tensor checked
//! against the sizes the options imply and converted from TensorFlow's layouts as AllenNLP's
//! loaders do.

use super::*;

/// Reads `path` from the weights and checks its element count against `expected` (the shape
/// AllenNLP expects; TF files may carry extra unit dimensions, so only the count must match).
fn read_weight(file: &Hdf5File, name: &str, path: &str, expected: &[usize]) -> Result<Vec<f32>> {
    let (shape, values) = file.read_dataset_f32(path)?;
    let want: usize = expected.iter().product();
    if values.len() != want {
        return Err(Error::shape(
            format!("{name}: {path} does not match options.json"),
            expected,
            shape,
        ));
    }
    Ok(values)
}

/// f32 values of the biLM that `options` describe: the character table (`n_characters` rows:
/// the file's 261 and the zero row for padding), the convolutions, the highway layers, the projection and both directions of every
/// LSTM layer (input and state weights, biases, projection).
pub fn parameter_count(options: &ElmoOptions) -> u64 {
    let cnn = &options.char_cnn;
    let u = |x: usize| x as u64;
    let (e, d, p, c) = (
        u(cnn.embedding.dim),
        u(options.n_filters()),
        u(options.lstm.projection_dim),
        u(options.lstm.dim),
    );
    let table = u(cnn.n_characters) * e;
    let convolutions: u64 = (cnn.filters.iter())
        .map(|&(width, filters)| u(filters) * (e * u(width) + 1))
        .sum();
    let highways = u(cnn.n_highway) * (d * 2 * d + 2 * d);
    let projection = p * d + p;
    let lstm = u(options.lstm.n_layers) * 2 * (4 * c * p + 4 * c * p + 4 * c + p * c);
    table + convolutions + highways + projection + lstm
}

/// Refuses, before any tensor is read, a biLM whose weights (f32) and `.hdf5` file (in memory
/// while it loads) would be over the memory limit (`memory_limit::check_model_fits`: wasm's
/// 4 GiB by default), naming the need.
fn check_elmo_load_fits(options: &ElmoOptions, weights_name: &str, file_bytes: u64) -> Result<()> {
    let weights = 4 * parameter_count(options);
    crate::memory_limit::check_model_fits(
        &format!("loading the ELMo biLM {weights_name}"),
        weights + file_bytes,
        &format!(
            "{:.1} MiB of weights as f32 ({} values, from options.json), {:.1} MiB of the \
             weight file in memory",
            crate::memory_limit::mib(weights),
            weights / 4,
            crate::memory_limit::mib(file_bytes)
        ),
        "choose a smaller biLM (AllenNLP publishes small, medium and original sizes)",
    )
}

impl ElmoBiLm {
    /// Loads `options.json` (text) and the weights (the bytes of the `.hdf5` file) onto
    /// `device`, converting the TF layouts as AllenNLP's loaders do. `weights_name` names the
    /// file in errors.
    pub fn load(
        options_json: &str,
        weights_name: &str,
        weights_hdf5: &[u8],
        device: &Device,
    ) -> Result<ElmoBiLm> {
        let options = ElmoOptions::from_json("options.json", options_json)?;
        check_elmo_load_fits(&options, weights_name, weights_hdf5.len() as u64)?;
        let file = Hdf5File::parse(weights_name, weights_hdf5)?;
        let cnn = &options.char_cnn;
        let activation = CharCnnActivation::from_options(&cnn.activation)?;
        let e = cnn.embedding.dim;
        let d = options.n_filters();
        let p = options.lstm.projection_dim;
        let c = options.lstm.dim;
        if !options.lstm.use_skip_connections {
            // `_ElmoBiLm.__init__`: "We only support pretrained biLMs with residual connections".
            return Err(Error::unsupported(
                "ELMo options without lstm.use_skip_connections (AllenNLP refuses them too)",
            ));
        }

        // char_embed (n_chars, E) -> (n_chars + 1, E) with a zero row 0.
        let (shape, values) = file.read_dataset_f32("char_embed")?;
        if shape.len() != 2 || shape[1] != e || shape[0] + 1 < 262 {
            return Err(Error::shape(
                format!("{weights_name}: char_embed does not match options.json"),
                format!("(>= 261, {e})"),
                shape,
            ));
        }
        let rows = shape[0] + 1;
        let mut table = vec![0.0f32; e];
        table.extend_from_slice(&values);
        let char_embedding = Tensor::from_vec(device, &[rows, e], table, "elmo.char_embed")?;

        let mut convolutions = Vec::with_capacity(cnn.filters.len());
        for (i, &(width, filters)) in cnn.filters.iter().enumerate() {
            let w_tf = read_weight(
                &file,
                weights_name,
                &format!("CNN/W_cnn_{i}"),
                &[1, width, e, filters],
            )?;
            let b = read_weight(&file, weights_name, &format!("CNN/b_cnn_{i}"), &[filters])?;
            let w = char_conv_weight_from_tensorflow(&w_tf, width, e, filters)?;
            convolutions.push(CharConvolution {
                weight: Tensor::from_vec(device, &[filters, e, width], w, "elmo.char_conv.weight")?,
                bias: Tensor::from_vec(device, &[filters], b, "elmo.char_conv.bias")?,
            });
        }

        let mut highways = Vec::with_capacity(cnn.n_highway);
        for k in 0..cnn.n_highway {
            let read = |name: &str, shape: &[usize]| {
                read_weight(&file, weights_name, &format!("CNN_high_{k}/{name}"), shape)
            };
            let (w, b) = highway_weights_from_tensorflow(
                &read("W_transform", &[d, d])?,
                &read("b_transform", &[d])?,
                &read("W_carry", &[d, d])?,
                &read("b_carry", &[d])?,
                d,
            )?;
            highways.push(HighwayLayer {
                weight: Tensor::from_vec(device, &[2 * d, d], w, "elmo.highway.weight")?,
                bias: Tensor::from_vec(device, &[2 * d], b, "elmo.highway.bias")?,
            });
        }

        // CNN_proj/W_proj is (D, P) (TF: x @ W); nn.Linear wants (P, D) (`_load_projection`).
        let w_proj = read_weight(&file, weights_name, "CNN_proj/W_proj", &[d, p])?;
        let mut projection = vec![0.0f32; p * d];
        for i in 0..d {
            for o in 0..p {
                projection[o * d + i] = w_proj[i * p + o];
            }
        }
        let b_proj = read_weight(&file, weights_name, "CNN_proj/b_proj", &[p])?;
        let projection_weight = Tensor::from_vec(device, &[p, d], projection, "elmo.proj.weight")?;
        let projection_bias = Tensor::from_vec(device, &[p], b_proj, "elmo.proj.bias")?;

        // `ElmoLstm.load_weights`: RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell; every
        // layer's input is P wide (input_size = hidden_size = projection_dim).
        let mut lstm = Vec::with_capacity(options.lstm.n_layers);
        for layer in 0..options.lstm.n_layers {
            let direction = |dir: usize| -> Result<LstmDirection> {
                let base = format!("RNN_{dir}/RNN/MultiRNNCell/Cell{layer}/LSTMCell");
                let w_0 =
                    read_weight(&file, weights_name, &format!("{base}/W_0"), &[p + p, 4 * c])?;
                let b = read_weight(&file, weights_name, &format!("{base}/B"), &[4 * c])?;
                let w_p = read_weight(&file, weights_name, &format!("{base}/W_P_0"), &[c, p])?;
                let w = lstm_weights_from_tensorflow(&w_0, &b, &w_p, p, c, p)?;
                Ok(LstmDirection {
                    w_input: Tensor::from_vec(device, &[4 * c, p], w.w_input, "elmo.lstm.w_input")?,
                    w_state: Tensor::from_vec(device, &[4 * c, p], w.w_state, "elmo.lstm.w_state")?,
                    bias: Tensor::from_vec(device, &[4 * c], w.bias, "elmo.lstm.bias")?,
                    w_proj: Tensor::from_vec(device, &[p, c], w.w_proj, "elmo.lstm.w_proj")?,
                })
            };
            lstm.push([direction(0)?, direction(1)?]);
        }

        Ok(ElmoBiLm {
            options,
            device: device.clone(),
            activation,
            weights: ElmoWeights {
                char_embedding,
                convolutions,
                highways,
                projection_weight,
                projection_bias,
                lstm,
            },
            stateful: false,
            state: None,
        })
    }
}

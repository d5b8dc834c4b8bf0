//! Every WGSL file of webnlu, listed once. The pipeline cache compiles from here and
//! `tests/rust/shaders_validate.rs` parses and validates each entry of [`ALL`] with naga.

/// One WGSL source file (`shaders/<name>.wgsl`, as build.rs embeds it: without its comments).
#[derive(Debug)]
pub struct Shader {
    /// The file stem, also the pipeline-cache key.
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($konst:ident, $name:literal) => {
        pub static $konst: Shader = Shader {
            name: $name,
            // comments stripped by build.rs (shaders/ holds the commented originals)
            source: include_str!(concat!(env!("OUT_DIR"), "/shaders/", $name, ".wgsl")),
        };
    };
}

shader!(MATMUL, "matmul");
shader!(ELEMENTWISE, "elementwise");
shader!(LAYERNORM, "layernorm");
shader!(SOFTMAX, "softmax");
shader!(ATTENTION, "attention");
shader!(EMBEDDING, "embedding");
shader!(DROPOUT, "dropout");
shader!(LOSSES, "losses");
shader!(POOLING, "pooling");
shader!(SIMILARITY, "similarity");
shader!(OPTIMIZER, "optimizer");
shader!(HIGHWAY, "highway");
shader!(CHAR_CNN, "char_cnn");
shader!(LSTM, "lstm");
shader!(COLUMN_BLOCK, "column_block");

/// All shaders, for validation and warm-up.
pub static ALL: &[&Shader] = &[
    &MATMUL,
    &ELEMENTWISE,
    &LAYERNORM,
    &SOFTMAX,
    &ATTENTION,
    &EMBEDDING,
    &DROPOUT,
    &LOSSES,
    &POOLING,
    &SIMILARITY,
    &OPTIMIZER,
    &HIGHWAY,
    &CHAR_CNN,
    &LSTM,
    &COLUMN_BLOCK,
];

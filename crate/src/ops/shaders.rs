//! Every WGSL file of webnlu, listed once. The pipeline cache compiles from here and
//! `tests/rust/ops/shaders_validate.rs` parses and validates each entry of [`ALL`] with naga.

/// One WGSL source file (`shaders/<name>.wgsl`, as build.rs embeds it: without its comments);
/// defined in the device layer, which compiles it.
pub use crate::device::Shader;

use std::mem::size_of;

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
shader!(MATMUL_F16, "matmul_f16");
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
    &MATMUL_F16,
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

/// The shaders of [`ALL`] that need the `shader-f16` feature (`enable f16;`): compiled only on
/// a device opened with it (see `GpuInfo::f16_arithmetic`).
pub static NEED_SHADER_F16: &[&Shader] = &[&MATMUL_F16];

/// A uniform params struct of a shader and the Rust struct that mirrors it: the WGSL struct's
/// name, and the size of the `#[repr(C)]` Rust struct the dispatches upload. Listed here, next to
/// the shaders, so that `tests/rust/ops/shaders_validate.rs` checks every uniform of every entry
/// point against its mirror (a field added on one side only would shift every field after it).
pub struct UniformMirror {
    pub shader: &'static Shader,
    pub wgsl_struct: &'static str,
    pub rust_bytes: usize,
}

const fn mirror(
    shader: &'static Shader,
    wgsl_struct: &'static str,
    rust_bytes: usize,
) -> UniformMirror {
    UniformMirror {
        shader,
        wgsl_struct,
        rust_bytes,
    }
}

/// Every uniform params struct of every shader in [`ALL`].
pub static UNIFORMS: &[UniformMirror] = &[
    mirror(&MATMUL, "Params", size_of::<super::matmul::MatmulParams>()),
    mirror(
        &MATMUL_F16,
        "Params",
        size_of::<super::matmul::f16_arithmetic::MatmulF16Params>(),
    ),
    mirror(
        &ELEMENTWISE,
        "Params",
        size_of::<super::elementwise::ElementwiseParams>(),
    ),
    mirror(
        &LAYERNORM,
        "Params",
        size_of::<super::layernorm::LayerNormParams>(),
    ),
    mirror(
        &SOFTMAX,
        "Params",
        size_of::<super::softmax::SoftmaxParams>(),
    ),
    mirror(
        &ATTENTION,
        "Params",
        size_of::<super::attention::AttentionParams>(),
    ),
    mirror(
        &EMBEDDING,
        "Params",
        size_of::<super::embedding::EmbeddingParams>(),
    ),
    mirror(
        &DROPOUT,
        "DropoutParams",
        size_of::<super::dropout::DropoutParams>(),
    ),
    mirror(
        &LOSSES,
        "LossParams",
        size_of::<super::losses::LossParams>(),
    ),
    mirror(
        &POOLING,
        "PoolingParams",
        size_of::<super::pooling::PoolingParams>(),
    ),
    mirror(
        &SIMILARITY,
        "SimilarityParams",
        size_of::<super::similarity::SimilarityParams>(),
    ),
    mirror(
        &OPTIMIZER,
        "AdamWParams",
        size_of::<super::optimizer::AdamWParams>(),
    ),
    mirror(
        &OPTIMIZER,
        "ClipParams",
        size_of::<super::optimizer::ClipParams>(),
    ),
    mirror(
        &HIGHWAY,
        "HighwayParams",
        size_of::<super::highway::HighwayParams>(),
    ),
    mirror(
        &CHAR_CNN,
        "CharCnnParams",
        size_of::<super::char_cnn::CharCnnParams>(),
    ),
    mirror(&LSTM, "LstmParams", size_of::<super::lstm::LstmParams>()),
    mirror(
        &COLUMN_BLOCK,
        "Params",
        size_of::<super::row_sharded::ColumnBlockParams>(),
    ),
];

//! What a dispatch runs: one compute entry point of one WGSL source. The op families own their
//! shaders (the table is `ops::shaders`); the device layer compiles what it is given.

/// One WGSL source file: `shaders/<name>.wgsl`, as the op families embed it (the table is
/// `ops::shaders`; the device layer only compiles what it is given, and imports nothing from ops).
#[derive(Debug)]
pub struct Shader {
    /// The file stem, also the pipeline-cache key.
    pub name: &'static str,
    pub source: &'static str,
}

/// One compute entry point of one WGSL file.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub shader: &'static Shader,
    pub entry: &'static str,
}

impl Shader {
    /// The compute entry point `entry` of this shader (`shaders::SOFTMAX.kernel("softmax_forward")`).
    pub const fn kernel(&'static self, entry: &'static str) -> Kernel {
        Kernel {
            shader: self,
            entry,
        }
    }
}

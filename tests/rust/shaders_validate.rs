//! Every WGSL file of the shader table parses and validates with naga (a plain CPU test: no
//! GPU needed), and every compute entry point stays within WebGPU's default limits: at most
//! 256 invocations and 16 KiB of workgroup storage per workgroup, at most 8 storage buffers.

use webnlu::ops::shaders::ALL;

const MAX_INVOCATIONS: u32 = 256;
const MAX_WORKGROUP_BYTES: u32 = 16384;
const MAX_STORAGE_BUFFERS: usize = 8;

#[test]
fn every_shader_parses_validates_and_fits_default_limits() {
    assert!(ALL.len() >= 6, "the table lists every shader family");
    for shader in ALL {
        let module = naga::front::wgsl::parse_str(shader.source).unwrap_or_else(|e| {
            panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source))
        });
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(), // no optional features (no f16, no subgroups)
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source)));

        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        assert!(
            !module.entry_points.is_empty(),
            "{}.wgsl has no entry point",
            shader.name
        );
        for (index, entry) in module.entry_points.iter().enumerate() {
            let name = format!("{}.wgsl::{}", shader.name, entry.name);
            assert_eq!(entry.stage, naga::ShaderStage::Compute, "{name}");
            let invocations: u32 = entry.workgroup_size.iter().product();
            assert!(
                invocations <= MAX_INVOCATIONS,
                "{name}: {invocations} invocations"
            );
            let used = info.get_entry_point(index);
            let mut workgroup_bytes = 0;
            let mut storage_buffers = 0;
            for (handle, global) in module.global_variables.iter() {
                if used[handle].is_empty() {
                    continue;
                }
                match global.space {
                    naga::AddressSpace::WorkGroup => workgroup_bytes += layouter[global.ty].size,
                    naga::AddressSpace::Storage { .. } => storage_buffers += 1,
                    _ => {}
                }
            }
            assert!(
                workgroup_bytes <= MAX_WORKGROUP_BYTES,
                "{name}: {workgroup_bytes} bytes of workgroup storage"
            );
            assert!(
                storage_buffers <= MAX_STORAGE_BUFFERS,
                "{name}: {storage_buffers} storage buffers"
            );
        }
    }
}

#[test]
fn a_broken_shader_is_rejected() {
    // The parse/validate step above can fail: a type error is caught.
    let bad = "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }";
    assert!(naga::front::wgsl::parse_str(bad).is_err());
}

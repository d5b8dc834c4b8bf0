//! The one safety net of the WGSL shaders (a plain CPU test: no GPU needed). For every file of
//! `shaders/`:
//! - it is in the shader table (`ops::shaders::ALL`), and the table lists no other;
//! - it parses and validates with naga, without optional features (no f16, no subgroups),
//!   except the shaders listed in `ops::shaders::NEED_SHADER_F16`, which validate with naga's
//!   f16 capability only (and fail without it: the list is exact);
//! - every compute entry point fits WebGPU's default limits: at most 256 invocations, 16 KiB of
//!   workgroup storage and 8 storage buffers per workgroup (browsers enforce them even where
//!   lavapipe does not);
//! - every entry point binds in the house order: group 0, bindings numbered 0, 1, 2, ... without
//!   gaps, read-only storage first, then read-write storage, then exactly one uniform params
//!   block (what `GpuContext::dispatch` builds its bind group from);
//! - every uniform's struct has its Rust mirror in `ops::shaders::UNIFORMS`, of the same size.

use std::collections::BTreeSet;

use webnlu::ops::shaders::{Shader, ALL, NEED_SHADER_F16, UNIFORMS};

const MAX_INVOCATIONS: u32 = 256;
const MAX_WORKGROUP_BYTES: u32 = 16384;
const MAX_STORAGE_BUFFERS: usize = 8;

#[test]
fn the_table_lists_every_file_of_the_shaders_folder() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("reading {}: {e}", folder.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("wgsl"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = ALL.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(listed.len(), ALL.len(), "a shader is listed twice in ALL");
    assert_eq!(
        on_disk, listed,
        "shaders/*.wgsl (left) and ops::shaders::ALL (right) differ"
    );
}

#[test]
fn every_shader_validates_fits_the_default_limits_and_binds_in_order() {
    for shader in ALL {
        check_shader(shader);
    }
}

#[test]
fn every_uniform_mirror_belongs_to_a_listed_shader() {
    for mirror in UNIFORMS {
        assert!(
            ALL.iter().any(|s| std::ptr::eq(*s, mirror.shader)),
            "UNIFORMS names {}.wgsl, which ALL does not list",
            mirror.shader.name
        );
    }
}

#[test]
fn a_broken_shader_is_rejected() {
    // The parse/validate step above can fail: a type error is caught.
    let bad = "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }";
    assert!(naga::front::wgsl::parse_str(bad).is_err());
}

/// Every check of the module documentation, for one shader.
fn check_shader(shader: &Shader) {
    let file = format!("{}.wgsl", shader.name);
    let source = shader.source;
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{file}: WGSL parse error:\n{}", e.emit_to_string(source)));
    let needs_f16 = NEED_SHADER_F16.iter().any(|s| std::ptr::eq(*s, shader));
    let without_f16 = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module);
    assert_eq!(
        without_f16.is_err(),
        needs_f16,
        "{file}: listed in NEED_SHADER_F16 = {needs_f16}, but validating without f16 {}",
        if needs_f16 { "succeeds" } else { "fails" }
    );
    let capabilities = if needs_f16 {
        naga::valid::Capabilities::SHADER_FLOAT16
    } else {
        naga::valid::Capabilities::empty()
    };
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| {
            panic!(
                "{file}: WGSL validation error:\n{}",
                e.emit_to_string(source)
            )
        });
    assert!(!module.entry_points.is_empty(), "{file}: no entry points");
    let ctx = module.to_ctx();
    let mut uniform_structs = BTreeSet::new();

    for (index, entry) in module.entry_points.iter().enumerate() {
        let name = format!("{file}::{}", entry.name);
        assert_eq!(entry.stage, naga::ShaderStage::Compute, "{name}");
        let invocations: u32 = entry.workgroup_size.iter().product();
        assert!(
            invocations <= MAX_INVOCATIONS,
            "{name}: {invocations} invocations per workgroup > {MAX_INVOCATIONS}"
        );
        let uses = info.get_entry_point(index);
        let used: Vec<&naga::GlobalVariable> = module
            .global_variables
            .iter()
            .filter(|(handle, _)| !uses[*handle].is_empty())
            .map(|(_, global)| global)
            .collect();
        let workgroup_bytes: u32 = used
            .iter()
            .filter(|g| g.space == naga::AddressSpace::WorkGroup)
            .map(|g| module.types[g.ty].inner.size(ctx))
            .sum();
        assert!(
            workgroup_bytes <= MAX_WORKGROUP_BYTES,
            "{name}: {workgroup_bytes} bytes of workgroup storage > {MAX_WORKGROUP_BYTES}"
        );

        // (group, binding, rank, variable); rank 0 = read-only storage, 1 = read-write, 2 = uniform
        let mut bindings: Vec<(u32, u32, u32, String)> = used
            .iter()
            .filter_map(|g| {
                let binding = g.binding.as_ref()?;
                let rank = match g.space {
                    naga::AddressSpace::Storage { access }
                        if !access.contains(naga::StorageAccess::STORE) =>
                    {
                        0
                    }
                    naga::AddressSpace::Storage { .. } => 1,
                    naga::AddressSpace::Uniform => {
                        let ty = &module.types[g.ty];
                        uniform_structs.insert(ty.name.clone().unwrap_or_default());
                        2
                    }
                    other => panic!("{name}: a binding in address space {other:?}"),
                };
                Some((
                    binding.group,
                    binding.binding,
                    rank,
                    g.name.clone().unwrap_or_default(),
                ))
            })
            .collect();
        bindings.sort();
        let storage_buffers = bindings.iter().filter(|b| b.2 < 2).count();
        assert!(
            storage_buffers <= MAX_STORAGE_BUFFERS,
            "{name}: {storage_buffers} storage buffers > {MAX_STORAGE_BUFFERS}"
        );
        for (i, (group, binding, _, var)) in bindings.iter().enumerate() {
            assert_eq!(*group, 0, "{name}: {var} is not in group 0");
            assert_eq!(
                *binding as usize, i,
                "{name}: bindings are not numbered 0, 1, 2, ... ({var})"
            );
        }
        for pair in bindings.windows(2) {
            assert!(
                pair[0].2 <= pair[1].2,
                "{name}: {} (binding {}) comes after {} (binding {}), against the order \
                 read-only, read-write, uniform",
                pair[1].3,
                pair[1].1,
                pair[0].3,
                pair[0].1
            );
        }
        assert_eq!(
            bindings.iter().filter(|b| b.2 == 2).count(),
            1,
            "{name}: expected exactly one uniform params block, as the last binding"
        );
    }

    // The uniforms against their Rust mirrors, both ways.
    let mirrors: Vec<_> = UNIFORMS
        .iter()
        .filter(|m| std::ptr::eq(m.shader, shader))
        .collect();
    for wgsl_struct in &uniform_structs {
        let mirror = mirrors
            .iter()
            .find(|m| m.wgsl_struct == wgsl_struct)
            .unwrap_or_else(|| {
                panic!("{file}: uniform struct {wgsl_struct} has no Rust mirror in ops::shaders::UNIFORMS")
            });
        let wgsl_bytes = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(wgsl_struct.as_str()))
            .map(|(_, t)| t.inner.size(ctx))
            .expect("the struct of a uniform is a type of the module")
            as usize;
        assert_eq!(
            wgsl_bytes, mirror.rust_bytes,
            "{file}: WGSL struct {wgsl_struct} is {wgsl_bytes} bytes, its Rust mirror {}",
            mirror.rust_bytes
        );
    }
    for mirror in mirrors {
        assert!(
            uniform_structs.contains(mirror.wgsl_struct),
            "{file}: UNIFORMS lists {}, which no entry point binds as a uniform",
            mirror.wgsl_struct
        );
    }
}

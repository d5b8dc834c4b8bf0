//! Shared by the op tests: deterministic test data, central finite differences, comparisons,
//! and the WGSL checks (naga validation + the default WebGPU limits + the binding-order rule).
#![allow(dead_code)]

/// Deterministic values uniform in `[lo, hi)` (SplitMix64, Steele et al., OOPSLA 2014).
pub fn random_values(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * unit
        })
        .collect()
}

/// `sum_i weights[i] * values[i]` in f64: turns a vector output into a scalar loss whose
/// gradient with respect to the output is `weights`.
pub fn weighted_sum(values: &[f32], weights: &[f32]) -> f64 {
    assert_eq!(values.len(), weights.len());
    values
        .iter()
        .zip(weights)
        .map(|(&v, &w)| v as f64 * w as f64)
        .sum()
}

/// Central differences `(f(x + h e_i) - f(x - h e_i)) / 2h` for every coordinate of `x`.
pub fn central_difference(x: &[f32], h: f32, mut f: impl FnMut(&[f32]) -> f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            let original = probe[i];
            probe[i] = original + h;
            let up = f(&probe);
            probe[i] = original - h;
            let down = f(&probe);
            probe[i] = original;
            // the step actually taken in f32 (x + h may round)
            let step = (original + h) as f64 - (original - h) as f64;
            (up - down) / step
        })
        .collect()
}

/// Asserts `|a - b| <= abs + rel * max(|a|, |b|)` elementwise; the message names the element.
pub fn assert_close(what: &str, analytic: &[f32], numeric: &[f64], abs: f64, rel: f64) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: lengths differ");
    for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
        let a = a as f64;
        let bound = abs + rel * a.abs().max(n.abs());
        assert!(
            (a - n).abs() <= bound,
            "{what}[{i}]: analytic {a} vs numeric {n} (bound {bound})"
        );
    }
}

/// Same as `assert_close` for two f32 slices (GPU vs CPU, or two CPU paths).
pub fn assert_close_f32(what: &str, found: &[f32], expected: &[f32], abs: f32, rel: f32) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths differ");
    for (i, (&a, &b)) in found.iter().zip(expected).enumerate() {
        let bound = abs + rel * a.abs().max(b.abs());
        assert!(
            (a - b).abs() <= bound,
            "{what}[{i}]: {a} vs {b} (bound {bound})"
        );
    }
}

/// WebGPU's default `maxComputeInvocationsPerWorkgroup`.
pub const WEBGPU_MAX_INVOCATIONS: u32 = 256;
/// WebGPU's default `maxComputeWorkgroupStorageSize` in bytes.
pub const WEBGPU_MAX_WORKGROUP_STORAGE: u32 = 16384;

/// Parses and validates a WGSL source with naga, checks every entry point against the default
/// WebGPU limits, and checks the house binding order of each entry point's resource interface
/// (group 0: read-only storage, then read-write storage, then exactly one uniform; bindings
/// numbered 0, 1, 2, ... without gaps). Returns the module for further checks.
pub fn validate_wgsl(name: &str, source: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(source)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| {
        panic!(
            "{name}: WGSL validation error:\n{}",
            e.emit_to_string(source)
        )
    });
    assert!(!module.entry_points.is_empty(), "{name}: no entry points");
    let ctx = module.to_ctx();
    for (index, entry) in module.entry_points.iter().enumerate() {
        let entry_name = format!("{name}::{}", entry.name);
        let invocations: u32 = entry.workgroup_size.iter().product();
        assert!(
            invocations <= WEBGPU_MAX_INVOCATIONS,
            "{entry_name}: {invocations} invocations per workgroup > {WEBGPU_MAX_INVOCATIONS}"
        );
        let uses = info.get_entry_point(index);
        let used: Vec<&naga::GlobalVariable> = module
            .global_variables
            .iter()
            .filter(|(handle, _)| !uses[*handle].is_empty())
            .map(|(_, g)| g)
            .collect();
        let workgroup_bytes: u32 = used
            .iter()
            .filter(|g| g.space == naga::AddressSpace::WorkGroup)
            .map(|g| module.types[g.ty].inner.size(ctx))
            .sum();
        assert!(
            workgroup_bytes <= WEBGPU_MAX_WORKGROUP_STORAGE,
            "{entry_name}: {workgroup_bytes} bytes of workgroup storage > {WEBGPU_MAX_WORKGROUP_STORAGE}"
        );
        // rank 0 = read-only storage, 1 = read-write storage, 2 = uniform
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
                    naga::AddressSpace::Uniform => 2,
                    other => panic!("{entry_name}: unexpected address space {other:?}"),
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
        for (i, (group, binding, _, var)) in bindings.iter().enumerate() {
            assert_eq!(*group, 0, "{entry_name}: {var} is not in group 0");
            assert_eq!(
                *binding as usize, i,
                "{entry_name}: bindings are not numbered 0, 1, 2, ... ({var})"
            );
        }
        for pair in bindings.windows(2) {
            assert!(
                pair[0].2 <= pair[1].2,
                "{entry_name}: {} (binding {}) comes after {} (binding {}), against the order read-only, read-write, uniform",
                pair[1].3, pair[1].1, pair[0].3, pair[0].1
            );
        }
        assert_eq!(
            bindings.iter().filter(|b| b.2 == 2).count(),
            1,
            "{entry_name}: expected exactly one uniform params block as the last binding"
        );
    }
    module
}

/// Size in bytes of the WGSL struct `type_name` (to compare with the Rust `#[repr(C)]` mirror).
pub fn wgsl_struct_size(module: &naga::Module, type_name: &str) -> u32 {
    let ctx = module.to_ctx();
    module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(type_name))
        .map(|(_, t)| t.inner.size(ctx))
        .unwrap_or_else(|| panic!("no WGSL type named {type_name}"))
}

/// Names of the compute entry points of a module.
pub fn entry_point_names(module: &naga::Module) -> Vec<String> {
    module.entry_points.iter().map(|e| e.name.clone()).collect()
}

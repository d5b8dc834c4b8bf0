// Reductions over one 256-invocation workgroup, shared by the row kernels of layernorm.wgsl and
// softmax.wgsl (a shader that needs them has the line `#include "lib/workgroup_reduce.wgsl"`;
// crate/build.rs appends this file there). Every invocation gets the result; call them from
// uniform control flow. Each invocation passes its partial value `v`; the tree of halving strides
// fixes the order of the operations, so the result does not depend on the GPU's scheduling.

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

// Sum of `v` over the workgroup.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { partial[lid] += partial[lid + s]; }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// Maximum of `v` over the workgroup.
fn workgroup_max(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { partial[lid] = max(partial[lid], partial[lid + s]); }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

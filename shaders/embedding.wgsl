// Embedding lookup (gather) and its backward (scatter-add of rows) without races or atomics.
//   forward:  out[i, :] (=, or += when accumulate) table[ids[i], :]
//   backward: dtable[v, :] += sum over i with ids[i] == v of dout[i, :]
// Ids >= V read as a zero row (the GPU can not report them; the CPU path returns an error).
//
// Row shards: a table over one storage binding is bound one shard at a time, rows
// [first_row, first_row + v) of the whole table. The forward of the first shard writes every
// output row (a zero row, or out unchanged with accumulate, where the id is in another shard);
// the later shards (skip_outside = 1) write only the rows whose id they hold. The backward of a
// shard sums into its own rows only. An unsharded table is one shard with first_row = 0.
//
// The backward gives each vocabulary row to one workgroup, which first checks (in parallel)
// whether any id equals it, and if so sums the matching rows of dout in id order: each dtable
// element has exactly one writer (no race), and the sum order is fixed (deterministic).

struct Params {
    n: u32,           // N = B*T ids
    c: u32,           // C, row width
    v: u32,           // V, vocabulary rows (of this shard)
    accumulate: u32,  // forward: 1 = add into out
    first_row: u32,   // the shard's first row in the whole table
    skip_outside: u32, // forward: 1 = leave rows whose id is outside this shard untouched
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> f_table: array<f32>;        // (V, C) shard rows
@group(0) @binding(1) var<storage, read> f_ids: array<u32>;          // (N)
@group(0) @binding(2) var<storage, read_write> f_out: array<f32>;    // (N, C)
@group(0) @binding(3) var<uniform> f_params: Params;

@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = f_params;
    let i = gid.x + gid.y * nwg.x * WG;  // index into out
    if (i >= p.n * p.c) { return; }
    let row = i / p.c;
    let col = i % p.c;
    let id = f_ids[row];
    let inside = id >= p.first_row && id - p.first_row < p.v;
    if (!inside && p.skip_outside != 0u) { return; }
    var value = 0.0;
    if (inside) { value = f_table[(id - p.first_row) * p.c + col]; }
    if (p.accumulate != 0u) { value += f_out[i]; }
    f_out[i] = value;
}

@group(0) @binding(0) var<storage, read> b_dout: array<f32>;         // (N, C)
@group(0) @binding(1) var<storage, read> b_ids: array<u32>;          // (N)
@group(0) @binding(2) var<storage, read_write> b_dtable: array<f32>; // (V, C) shard rows
@group(0) @binding(3) var<uniform> b_params: Params;

var<workgroup> row_used: atomic<u32>;

@compute @workgroup_size(256)
fn embedding_backward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = b_params;
    let lid = lid3.x;
    let v = wid.x + wid.y * nwg.x;  // this workgroup's row of the shard
    if (v >= p.v) { return; }       // uniform per workgroup
    let id = p.first_row + v;       // ... and of the whole table
    if (lid == 0u) { atomicStore(&row_used, 0u); }
    workgroupBarrier();
    for (var i = lid; i < p.n; i += WG) {
        if (b_ids[i] == id) { atomicStore(&row_used, 1u); }
    }
    workgroupBarrier();
    if (atomicLoad(&row_used) == 0u) { return; }  // most rows: no token uses them
    for (var col = lid; col < p.c; col += WG) {
        var sum = 0.0;
        for (var i = 0u; i < p.n; i++) {
            if (b_ids[i] == id) { sum += b_dout[i * p.c + col]; }
        }
        b_dtable[v * p.c + col] += sum;
    }
}

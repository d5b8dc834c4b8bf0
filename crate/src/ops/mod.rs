//! Every op webnlu computes, one file per op family, each with its WGSL kernel
//! (`shaders/<family>.wgsl`), its GPU dispatch and its plain-Rust CPU version, forward and
//! backward side by side (llm.c style).
//!
//! # How to write an op (the pattern every family follows)
//!
//! **Arguments:** outputs first (`&mut Tensor`), then inputs (`&Tensor`), then sizes/options
//! (llm.c). Sizes come from the tensors' shapes and are checked with
//! [`Tensor::expect_shape`](crate::tensor::Tensor::expect_shape) (an `Error::Shape` naming the
//! op and the tensor). The op runs where its first output lives; an input on another device
//! gives an `Error::InvalidArgument` (from `Tensor::cpu()` / `Tensor::gpu()`).
//!
//! **Backward accumulates:** `d_input += ...` into gradients the caller zeroed once per step
//! (`Tensor::zeros`), like llm.c. Forward keeps what backward needs (e.g. layernorm's mean and
//! rstd) in outputs the caller owns.
//!
//! **CPU version:** a `pub fn <op>_cpu(out: &mut [f32], inp: &[f32], sizes...)` on slices, next to
//! the dispatch. It is the fallback backend and the reference of the tests.
//!
//! **GPU version:** entry points `<op>_forward` / `<op>_backward` in `shaders/<family>.wgsl`,
//! registered once in [`shaders`] (the `include_str!` table that the naga test validates): add
//! `shader!(LSTM, "lstm");` there and `&LSTM` to `ALL`, then use `&shaders::LSTM` in a
//! [`Kernel`].
//! Bindings, all in group 0: read-only inputs first (`var<storage, read>`), then outputs
//! (`var<storage, read_write>`), then ONE uniform params struct, mirrored in Rust by a
//! `#[repr(C)] #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]` struct of `u32`/`f32`
//! fields (pad with `_pad` fields; the uniform is zero-padded to 16 bytes). Different entry
//! points of one file may bind different variables at the same binding number (collisions are
//! checked per entry point). Optional inputs bind [`GpuContext::placeholder`] plus a flag in
//! the params. At most 8 storage buffers per kernel (WebGPU default).
//!
//! Dispatch through [`GpuContext::dispatch`]`(&shaders::SOFTMAX.kernel(entry), &[inputs],
//! &[outputs], &params, workgroups)`; it only *encodes*. Work is submitted by `Device::flush`, a read-back
//! (`Tensor::to_vec`) or an upload. For 1-D kernels use [`GpuContext::linear_groups`]`(n, 256)`
//! and in WGSL `let i = gid.x + gid.y * nwg.x * 256u; if (i >= params.n) { return; }` with
//! `@builtin(global_invocation_id) gid` and `@builtin(num_workgroups) nwg`.
//!
//! **Tensors:** `Tensor` (= `Tensor<f32>`) for values, `Tensor<u32>` for ids/labels (bound as
//! `array<u32>`). Create with `Tensor::zeros` (gradients, accumulators), `Tensor::uninit`
//! (outputs a kernel overwrites completely), `Tensor::from_vec` (upload); every constructor
//! takes a name that errors quote. Shapes are row-major; an op may treat leading dimensions as
//! one (matmul's batch, layernorm's rows).
//!
//! **Errors:** shape problems -> `Error::Shape`, wrong device -> `Error::InvalidArgument`, and
//! anything the GPU reports (validation error, out of memory, lost device, a buffer over the
//! limits) -> `Error::Gpu`. After a GPU error the context refuses further work (the caller
//! opens a new `Device` and reloads), so check `Result`s rather than reading back garbage.
//!
//! **Limits:** at most 256 invocations and 16 KiB of `var<workgroup>` per workgroup, at most
//! 65535 workgroups per dimension (WebGPU defaults). Empty tensors dispatch nothing.
//!
//! A shape comment on every tensor argument and every WGSL binding, e.g. `// (B*T, C)`.
//!
//! ```ignore
//! // From ops/elementwise.rs: y = f(x) for f = GELU, tanh, ReLU. y, x: any shape, the same.
//! pub fn activation_forward(y: &mut Tensor, x: &Tensor, activation: Activation) -> Result<()> {
//!     y.expect_shape("activation_forward", x.shape())?;
//!     match y.gpu_context().cloned() {
//!         None => {
//!             activation_forward_cpu(y.cpu_mut()?, x.cpu()?, activation);
//!             Ok(())
//!         }
//!         Some(ctx) => ctx.dispatch(
//!             // "gelu_forward" (or tanh, relu) of shaders/elementwise.wgsl
//!             &shaders::ELEMENTWISE.kernel(activation.entries().0),
//!             &[x.gpu()?],
//!             &[y.gpu()?],
//!             &params(x.numel()), // ElementwiseParams { n, _pad: [0; 3] }
//!             ctx.linear_groups(x.numel(), 256),
//!         ),
//!     }
//! }
//! /// y (n) = f(x (n))
//! pub fn activation_forward_cpu(y: &mut [f32], x: &[f32], activation: Activation) { ... }
//! /// dx += f'(x) * dy (`saved`: x for GELU and ReLU, y for tanh)
//! pub fn activation_backward(dx: &mut Tensor, saved: &Tensor, dy: &Tensor, activation: Activation)
//!     -> Result<()> { ... }
//! pub fn activation_backward_cpu(dx: &mut [f32], saved: &[f32], dy: &[f32], activation: Activation) { ... }
//! ```
//!
//! Tests (in `tests/rust/ops/<family>.rs`): GPU == CPU within a stated tolerance on odd sizes,
//! size 1 and empty; backward vs central finite differences of the CPU forward
//! (see `tests/rust/common/op_checks.rs` for the shared helpers).

pub mod attention;
mod attention_cpu;
pub mod char_cnn;
pub mod cpu_parallel;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod highway;
pub mod lanes;
pub mod layernorm;
mod length_check;
pub mod losses;
pub mod lstm;
pub mod matmul;
pub mod optimizer;
pub mod pooling;
pub mod row_sharded;
pub mod shaders;
pub mod similarity;
pub mod softmax;

pub use crate::device::{GpuContext, Kernel};
pub use crate::tensor::Tensor;

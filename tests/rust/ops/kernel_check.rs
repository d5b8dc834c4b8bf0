//! The kernel check that the browser test runs (`checkKernels()` in Chromium), natively on
//! lavapipe: every output of every case within its tolerance, and a wrong device refused.

use crate::op_checks;
use webnlu::kernel_check::check_kernels;
use webnlu::Device;

#[test]
fn kernel_check_passes_on_the_native_gpu() {
    let gpu = op_checks::gpu();
    let checks = pollster::block_on(check_kernels(&gpu)).expect("kernel check runs");
    for check in &checks {
        println!(
            "{:<48} {:?} max |gpu - cpu| = {:.3e} (tolerance {:.3e})",
            check.name, check.shape, check.max_abs_diff, check.tolerance
        );
    }
    // matmul 5, layernorm 6, softmax 2, attention 10 (5 without and 5 with dropout), lstm 6,
    // cross-entropy 2
    assert_eq!(checks.len(), 31);
    assert!(checks
        .iter()
        .any(|c| c.name == "attention_backward dv with dropout"));
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "outside tolerance: {failed:#?}");
}

#[test]
fn kernel_check_refuses_the_cpu() {
    let err = pollster::block_on(check_kernels(&Device::Cpu)).unwrap_err();
    assert!(err.to_string().contains("given the CPU"), "{err}");
}

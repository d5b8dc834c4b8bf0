//! The device layer: selection policy, WebGPU default limits, upload/read-back, the buffer
//! pool and what the device holds (memory usage, trim), the overhead counters and the uniform
//! arena (many dispatches' params in one submit), and GPU failures as error values
//! (over-limit buffer, validation error, lost device), never panics (more on a lost device in
//! device_lost.rs, on allocations refused in out_of_memory.rs).

use crate::op_checks;
use op_checks::*;
use webnlu::device::{Device, DeviceChoice, GpuOptions};
use webnlu::ops::elementwise::{add_backward, gelu_forward};
use webnlu::ops::shaders;
use webnlu::{Error, Tensor};

#[test]
fn auto_prefers_the_cpu_on_a_software_adapter_and_explicit_choice_wins() {
    let gpu = gpu(); // explicit: a GPU even though lavapipe is a software adapter
    let Device::Gpu(ctx) = &gpu else {
        panic!("explicit GPU choice must give a GPU")
    };
    let auto = Device::new_blocking(DeviceChoice::Auto, &GpuOptions::default()).unwrap();
    if ctx.info().is_software {
        assert!(
            !auto.is_gpu(),
            "auto must pick the CPU on {}",
            ctx.info().name
        );
    } else {
        assert!(
            auto.is_gpu(),
            "auto must pick a real GPU ({})",
            ctx.info().name
        );
    }
    let cpu = Device::new_blocking(DeviceChoice::Cpu, &GpuOptions::default()).unwrap();
    assert!(!cpu.is_gpu());
    assert!("gpu".parse::<DeviceChoice>().unwrap() == DeviceChoice::Gpu);
    assert!("tpu".parse::<DeviceChoice>().is_err());
}

#[test]
fn upload_read_back_and_pool_reuse() {
    let gpu = gpu();
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let data = random(1000, 1);
    let t = upload(&gpu, &[10, 100], &data, "x");
    assert_eq!(download(&t), data);
    let ids = Tensor::<u32>::from_vec(&gpu, &[3], vec![7, 0, u32::MAX], "ids").unwrap();
    assert_eq!(ids.to_vec_blocking().unwrap(), vec![7, 0, u32::MAX]);
    let empty = Tensor::<f32>::zeros(&gpu, &[0, 5], "empty").unwrap();
    assert!(download(&empty).is_empty());
    let zeros = Tensor::<f32>::zeros(&gpu, &[33], "zeros").unwrap();
    assert_eq!(download(&zeros), vec![0.0; 33]);
    // A dropped buffer goes back to the pool and is handed out again.
    ctx.trim_pool();
    drop(t);
    let free = ctx.pool_free_bytes();
    assert!(free >= 4000, "dropped buffer is pooled ({free} bytes free)");
    let again = Tensor::<f32>::zeros(&gpu, &[1000], "again").unwrap();
    assert_eq!(
        ctx.pool_free_bytes(),
        free - 4096,
        "the pooled 4000-byte bucket (4096) is reused"
    );
    assert_eq!(
        download(&again),
        vec![0.0; 1000],
        "a recycled buffer is cleared by zeros()"
    );
    // to_device round trip.
    let back = again.to_device_blocking(&Device::Cpu).unwrap();
    assert_eq!(back.cpu().unwrap().len(), 1000);
}

#[test]
fn a_buffer_over_the_limit_is_an_error_naming_it() {
    let gpu = gpu();
    // 128 MiB is WebGPU's default storage-binding limit (lavapipe itself allows more).
    let elements = (128usize << 20) / 4 + 1;
    let err = Tensor::<f32>::zeros(&gpu, &[elements], "bert.embeddings.too_big").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Gpu(_)), "{message}");
    assert!(
        message.contains("bert.embeddings.too_big") && message.contains("134217732"),
        "{message}"
    );
    // The device is still usable afterwards.
    let ok = Tensor::<f32>::zeros(&gpu, &[4], "small").unwrap();
    assert_eq!(download(&ok), vec![0.0; 4]);
}

#[test]
fn raising_limits_beyond_the_adapter_is_an_error() {
    let limits = wgpu::Limits {
        max_compute_invocations_per_workgroup: u32::MAX,
        ..Default::default()
    };
    let err = Device::new_blocking(
        DeviceChoice::Gpu,
        &GpuOptions {
            limits: Some(limits),
            ..GpuOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Gpu(_)), "{err}");
}

#[test]
fn a_validation_error_is_an_error_value() {
    let gpu = gpu();
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let x = upload(&gpu, &[4], &[1.0; 4], "x");
    let y = Tensor::<f32>::zeros(&gpu, &[4], "y").unwrap();
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        n: u32,
        _pad: [u32; 3],
    }
    // gelu_forward binds 1 input + 1 output; passing 2 inputs shifts the output binding, so
    // the layout does not match the shader: wgpu reports a validation error.
    let result = ctx.dispatch(
        &shaders::ELEMENTWISE.kernel("gelu_forward"),
        &[x.gpu().unwrap(), x.gpu().unwrap()],
        &[y.gpu().unwrap()],
        &Params { n: 4, _pad: [0; 3] },
        [1, 1, 1],
    );
    let err = result.and_then(|_| gpu.flush()).unwrap_err();
    assert!(matches!(err, Error::Gpu(_)), "{err}");
}

#[test]
fn a_lost_device_is_an_error_value() {
    let gpu = gpu();
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let x = upload(&gpu, &[4], &[1.0; 4], "x");
    let mut y = Tensor::<f32>::zeros(&gpu, &[4], "y").unwrap();
    ctx.destroy();
    let err = webnlu::ops::elementwise::gelu_forward(&mut y, &x).unwrap_err();
    assert!(
        matches!(&err, Error::DeviceLost { reason, .. } if reason == "destroyed"),
        "{err}"
    );
    assert!(x.to_vec_blocking().is_err());
    assert!(Tensor::<f32>::zeros(&gpu, &[4], "z").is_err());
}

#[test]
fn mixing_devices_is_an_error() {
    let gpu = gpu();
    let x = upload(&gpu, &[4], &[1.0; 4], "x_on_gpu");
    let mut y = Tensor::<f32>::zeros(&Device::Cpu, &[4], "y_on_cpu").unwrap();
    let err = webnlu::ops::elementwise::gelu_forward(&mut y, &x).unwrap_err();
    assert!(err.to_string().contains("x_on_gpu is on the GPU"), "{err}");
}

#[test]
fn stats_count_the_overhead_and_params_of_many_dispatches_stay_apart() {
    let gpu = gpu();
    // 300 dispatches of one submit, each with its own params (n = 1..=300): more than one
    // 256-slot chunk of the uniform arena, so a wrong slot offset shows in the results.
    let count = 300;
    let ones: Vec<Tensor> = (1..=count)
        .map(|n| upload(&gpu, &[n], &vec![1.0; n], "ones"))
        .collect();
    let mut sums: Vec<(Tensor, Tensor)> = (1..=count)
        .map(|n| {
            let a = Tensor::zeros(&gpu, &[n], "a").unwrap();
            (a, Tensor::zeros(&gpu, &[n], "b").unwrap())
        })
        .collect();
    gpu.flush().unwrap();
    let before = gpu.stats();
    for (one, (a, b)) in ones.iter().zip(&mut sums) {
        add_backward(a, b, one).unwrap();
    }
    let encoded = gpu.stats().since(&before);
    assert_eq!(encoded.dispatches, count as u64);
    assert_eq!(encoded.submits, 0, "dispatches only encode: {encoded:?}");
    for (i, (a, _)) in sums.iter().enumerate() {
        assert_eq!(download(a), vec![1.0; i + 1], "dispatch {i}");
    }
    let s = gpu.stats().since(&before);
    assert_eq!(s.dispatches, count as u64);
    assert_eq!(s.bind_groups_created, count as u64);
    // the first read-back submits the 300 dispatches with its copy, each later one its copy
    assert_eq!(s.readbacks, count as u64);
    assert_eq!(s.submits, count as u64, "one submit per read-back: {s:?}");
    assert_eq!(s.buffers_created, 0, "no tensor was made: {s:?}");
    assert!(
        s.pipelines_created <= 1,
        "add_backward compiled once: {s:?}"
    );
    assert!(
        s.uniform_buffers_created <= 2,
        "params go to the arena's 64 KiB chunks, not a buffer per dispatch: {s:?}"
    );
    assert!(Device::Cpu.stats() == webnlu::device::DeviceStats::default());
}

#[test]
fn a_repeated_dispatch_reuses_its_bind_group_until_the_pool_is_trimmed() {
    let gpu = gpu();
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let one = upload(&gpu, &[5], &[1.0; 5], "one");
    let mut a = Tensor::zeros(&gpu, &[5], "a").unwrap();
    let mut b = Tensor::zeros(&gpu, &[5], "b").unwrap();
    gpu.flush().unwrap();
    let before = gpu.stats();
    for _ in 0..3 {
        add_backward(&mut a, &mut b, &one).unwrap();
    }
    let s = gpu.stats().since(&before);
    assert_eq!(s.dispatches, 3);
    assert_eq!(
        s.bind_groups_created, 1,
        "same buffers, same arena chunk: {s:?}"
    );
    assert_eq!(
        download(&a),
        vec![3.0; 5],
        "each dispatch read its own params slot"
    );
    ctx.trim_pool(); // forgets the cached bind groups with the free buffers
    let before = gpu.stats();
    add_backward(&mut a, &mut b, &one).unwrap();
    assert_eq!(gpu.stats().since(&before).bind_groups_created, 1);
    assert_eq!(download(&b), vec![4.0; 5]);
}

#[test]
fn the_kernel_profile_charges_each_dispatch_to_its_kernel_and_only_while_on() {
    let gpu = gpu();
    let x = upload(&gpu, &[64], &[0.5; 64], "x");
    let mut y = Tensor::zeros(&gpu, &[64], "y").unwrap();
    let (mut a, mut b) = (
        Tensor::zeros(&gpu, &[64], "a").unwrap(),
        Tensor::zeros(&gpu, &[64], "b").unwrap(),
    );
    add_backward(&mut a, &mut b, &x).unwrap(); // encoded before the profile: not charged
    gpu.set_kernel_profile(true).unwrap();
    for _ in 0..3 {
        add_backward(&mut a, &mut b, &x).unwrap();
    }
    gelu_forward(&mut y, &x).unwrap();
    let profile = gpu.take_kernel_profile();
    let names: Vec<(&str, u64)> = profile.iter().map(|k| (k.kernel, k.dispatches)).collect();
    assert_eq!(profile.len(), 2, "{names:?}");
    let count = |name: &str| names.iter().find(|k| k.0 == name).map(|k| k.1);
    assert_eq!(count("add_backward"), Some(3), "{names:?}");
    assert_eq!(count("gelu_forward"), Some(1), "{names:?}");
    assert!(profile.iter().all(|k| k.ms > 0.0), "{profile:?}");
    assert!(profile.windows(2).all(|w| w[0].ms >= w[1].ms), "most first");
    assert!(gpu.take_kernel_profile().is_empty(), "taking starts over");
    gpu.set_kernel_profile(false).unwrap();
    add_backward(&mut a, &mut b, &x).unwrap();
    assert!(gpu.take_kernel_profile().is_empty(), "off: nothing charged");
    assert_eq!(
        download(&a),
        vec![2.5; 64],
        "profiled dispatches still compute"
    );
    assert!(Device::Cpu.take_kernel_profile().is_empty());
}

#[test]
fn memory_usage_counts_live_and_pooled_buffers_and_trim_gives_back_the_pooled_ones() {
    let gpu = gpu();
    let start = gpu.memory_usage();
    assert_eq!(
        (start.gpu_bytes, start.gpu_buffers),
        (16, 1),
        "a new device holds its 16-byte placeholder"
    );
    let one = upload(&gpu, &[1000], &[1.0; 1000], "one"); // 4000 bytes: the 4096 bucket
    let mut a = Tensor::zeros(&gpu, &[1000], "a").unwrap();
    let mut b = Tensor::zeros(&gpu, &[1000], "b").unwrap();
    let live = gpu.memory_usage();
    assert_eq!((live.gpu_bytes, live.gpu_buffers), (16 + 3 * 4096, 4));
    add_backward(&mut a, &mut b, &one).unwrap(); // its params: a 64 KiB uniform-arena chunk
    let dispatched = gpu.memory_usage();
    assert_eq!(
        (dispatched.gpu_bytes, dispatched.gpu_buffers),
        (16 + 3 * 4096 + 65536, 5)
    );
    drop(b);
    let pooled = gpu.memory_usage();
    assert_eq!(
        (pooled.gpu_bytes, pooled.gpu_buffers),
        (dispatched.gpu_bytes, dispatched.gpu_buffers),
        "a dropped tensor's buffer is pooled, still held"
    );
    gpu.trim().unwrap();
    let trimmed = gpu.memory_usage();
    assert_eq!(
        (trimmed.gpu_bytes, trimmed.gpu_buffers),
        (16 + 2 * 4096, 3),
        "trim drops the pooled buffer and the uniform chunk, not the live tensors"
    );
    // the device still works after a trim (new chunk, new buffers)
    add_backward(
        &mut a,
        &mut Tensor::zeros(&gpu, &[1000], "c").unwrap(),
        &one,
    )
    .unwrap();
    assert_eq!(download(&a), vec![2.0; 1000]);
    drop((one, a));
    gpu.trim().unwrap();
    let end = gpu.memory_usage();
    assert_eq!((end.gpu_bytes, end.gpu_buffers), (16, 1));
    let cpu = Device::Cpu.memory_usage();
    assert_eq!((cpu.gpu_bytes, cpu.gpu_buffers), (0, 0));
}

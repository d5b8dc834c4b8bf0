//! Compute pipelines compiled once per (shader, entry point, binding counts) and kept.
//!
//! The bind-group layout is written out explicitly, the same for every kernel ("like a C
//! header"): group 0, bindings `0..n_inputs` read-only storage, then `n_outputs` read-write
//! storage, then one uniform params struct at binding `n_inputs + n_outputs`, bound with a
//! dynamic offset into the uniform arena (`uniform_arena.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::kernel::Kernel;
use super::stats::{Counter, StatsCounters};

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct PipelineKey {
    shader: &'static str,
    entry: &'static str,
    n_inputs: usize,
    n_outputs: usize,
}

#[derive(Clone)]
pub(crate) struct CachedPipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<CachedPipeline>>>,
}

impl PipelineCache {
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        kernel: &Kernel,
        n_inputs: usize,
        n_outputs: usize,
        stats: &StatsCounters,
    ) -> Arc<CachedPipeline> {
        let key = PipelineKey {
            shader: kernel.shader.name,
            entry: kernel.entry,
            n_inputs,
            n_outputs,
        };
        if let Some(found) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return found.clone();
        }
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            modules
                .entry(kernel.shader.name)
                .or_insert_with(|| {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(kernel.shader.name),
                        source: wgpu::ShaderSource::Wgsl(kernel.shader.source.into()),
                    })
                })
                .clone()
        };
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = Vec::with_capacity(n_inputs + n_outputs + 1);
        for i in 0..n_inputs {
            entries.push(storage(i as u32, true));
        }
        for o in 0..n_outputs {
            entries.push(storage((n_inputs + o) as u32, false));
        }
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: (n_inputs + n_outputs) as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel.entry),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        stats.add(Counter::PipelinesCreated, 1);
        let cached = Arc::new(CachedPipeline { pipeline, layout });
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, cached.clone());
        cached
    }
}

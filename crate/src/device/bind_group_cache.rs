//! Bind groups kept by what they bind. A training step makes the same dispatches over the same
//! pooled buffers every time (the pool hands out buffers in the same order when the step
//! allocates in the same order), so after the first steps a dispatch finds its bind group
//! here instead of creating one (a driver descriptor-set allocation and write on each).
//!
//! The key is the layout, the bound storage buffers in binding order and the uniform-arena
//! chunk (the slot inside it is a dynamic offset, not part of the bind group). A cached bind
//! group keeps its buffers alive, so the cache is emptied when the pool gives its free buffers
//! back (`GpuContext::trim_pool`) and when it grows past [`MAX_ENTRIES`] (a workload whose
//! buffers never repeat would otherwise only add).

use std::collections::HashMap;

/// Entries at most; past it the cache starts over.
const MAX_ENTRIES: usize = 4096;

#[derive(Hash, PartialEq, Eq)]
struct BindGroupKey {
    layout: wgpu::BindGroupLayout,
    storage: Vec<wgpu::Buffer>,
    uniform_chunk: wgpu::Buffer,
}

#[derive(Default)]
pub(crate) struct BindGroupCache {
    groups: HashMap<BindGroupKey, wgpu::BindGroup>,
}

impl BindGroupCache {
    /// The bind group of `layout` over `storage` (bindings 0..n) and the uniform chunk (binding
    /// n, bound through `uniform`); `create` makes it on a miss.
    pub(crate) fn get_or_create(
        &mut self,
        layout: &wgpu::BindGroupLayout,
        storage: &[&wgpu::Buffer],
        uniform_chunk: &wgpu::Buffer,
        create: impl FnOnce() -> wgpu::BindGroup,
    ) -> wgpu::BindGroup {
        let key = BindGroupKey {
            layout: layout.clone(),
            storage: storage.iter().map(|&b| b.clone()).collect(),
            uniform_chunk: uniform_chunk.clone(),
        };
        if let Some(found) = self.groups.get(&key) {
            return found.clone();
        }
        if self.groups.len() >= MAX_ENTRIES {
            self.groups.clear();
        }
        let group = create();
        self.groups.insert(key, group.clone());
        group
    }

    pub(crate) fn clear(&mut self) {
        self.groups.clear();
    }
}

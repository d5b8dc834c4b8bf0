//! Parameter gradients of one step, by the parameter's canonical Hugging Face name (the name of
//! its tensor, e.g. `bert.encoder.layer.0.attention.self.query.weight`). A gradient exists only
//! for the parameters the freezing policy trains; it is created as zeros (on the parameter's
//! device) the first time a backward adds into it, and backwards accumulate (llm.c style), so
//! gradient accumulation over several batches is just several backwards before the step.

use std::collections::BTreeMap;

use crate::tensor::Tensor;
use crate::Result;

#[derive(Default)]
pub struct Gradients {
    tensors: BTreeMap<String, Tensor>,
}

impl Gradients {
    pub fn new() -> Self {
        Gradients::default()
    }

    /// Takes the gradient of `param` out (zeros of its shape the first time) so that an op can
    /// write several gradients at once; give it back with [`Gradients::put`].
    pub fn take(&mut self, param: &Tensor) -> Result<Tensor> {
        match self.tensors.remove(param.name()) {
            Some(g) => Ok(g),
            None => Tensor::zeros(&param.device(), param.shape(), param.name()),
        }
    }

    /// Runs `backward` with the gradients of a layer's `weight` and `bias` taken out (as
    /// [`Gradients::take`]) and puts them back afterwards, whether it succeeded or not.
    pub fn with_weight_and_bias(
        &mut self,
        weight: &Tensor,
        bias: &Tensor,
        backward: impl FnOnce(&mut Tensor, &mut Tensor) -> Result<()>,
    ) -> Result<()> {
        let mut dweight = self.take(weight)?;
        let mut dbias = self.take(bias)?;
        let result = backward(&mut dweight, &mut dbias);
        self.put(dweight);
        self.put(dbias);
        result
    }

    /// Puts a gradient back under its tensor's name.
    pub fn put(&mut self, gradient: Tensor) {
        self.tensors.insert(gradient.name().to_string(), gradient);
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.get_mut(name)
    }

    /// Names of the parameters that have a gradient, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Tensor)> {
        self.tensors.iter_mut().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Forget every gradient (the next backward starts from zeros).
    pub fn clear(&mut self) {
        self.tensors.clear();
    }
}

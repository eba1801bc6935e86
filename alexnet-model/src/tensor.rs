//! [`HostTensor`]: an f32 tensor in host memory, row-major, in PyTorch's layout.
//!
//! What state dicts and preprocessing hand around. Burn's `TensorData` holds bytes of any
//! dtype behind a `Shape`; state dicts need f32 values whose shapes compare directly with
//! PyTorch's (`[out, in, k, k]`), row slicing and transposition, so this small type does that
//! and converts to and from Burn tensors.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// A tensor on the host in f32, PyTorch's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl HostTensor {
    /// A Burn tensor with the same shape and values (`D` must equal the rank).
    pub fn to_tensor<B: Backend, const D: usize>(&self, device: &B::Device) -> Tensor<B, D> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), self.shape.clone()),
            device,
        )
    }

    /// `count` rows (slices of the first dimension) from `start`.
    pub fn rows(&self, start: usize, count: usize) -> Self {
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = count;
        let values = self.values[start * row..(start + count) * row].to_vec();
        Self { shape, values }
    }

    /// Concatenates tensors along the first dimension.
    pub fn stack_rows(parts: impl IntoIterator<Item = HostTensor>) -> Self {
        let mut parts = parts.into_iter();
        let mut out = parts.next().expect("at least one part");
        for part in parts {
            out.shape[0] += part.shape[0];
            out.values.extend(part.values);
        }
        out
    }

    /// Copies a Burn tensor to the host.
    pub fn from_tensor<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Self {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("converted to f32");
        Self { shape, values }
    }

    /// Transposes a `[rows, cols]` matrix.
    pub fn transpose(&self) -> Self {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut values = vec![0.0; self.values.len()];
        for r in 0..rows {
            for c in 0..cols {
                values[c * rows + r] = self.values[r * cols + c];
            }
        }
        Self {
            shape: vec![cols, rows],
            values,
        }
    }
}

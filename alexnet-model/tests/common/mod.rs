//! Helpers the weight-file tests share (checkpoint, caffe, pretrained).

#![allow(dead_code)]

use std::path::Path;

use alexnet_model::tensor::HostTensor;
use alexnet_model::AlexNetError;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// The fixture script's input: x[i] = ((((i·2654435761) mod 2³²) >> 24) − 128) / 64.
pub fn formula_input<Bk: Backend>(side: usize) -> Tensor<Bk, 4> {
    let values: Vec<f32> = (0..(3 * side * side) as u64)
        .map(|i| ((((i * 2_654_435_761) % (1 << 32)) >> 24) as f32 - 128.0) / 64.0)
        .collect();
    Tensor::from_data(
        TensorData::new(values, [1, 3, side, side]),
        &Default::default(),
    )
}

/// The largest absolute difference between two tensors of the same shape.
pub fn max_diff(a: &HostTensor, b: &HostTensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.values
        .iter()
        .zip(&b.values)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The error's message, checked to be one line naming `file`.
pub fn message<T>(result: Result<T, AlexNetError>, file: &Path) -> String {
    let Err(error) = result else {
        panic!("{}: expected an error", file.display())
    };
    let text = error.to_string();
    assert!(matches!(error, AlexNetError::File { .. }), "{text}");
    assert!(!text.contains('\n'), "not one line: {text}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(text.contains(name), "does not name {name}: {text}");
    println!("{text}");
    text
}

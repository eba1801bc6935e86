//! Library part of `alexnet-train`: its command line, datasets and augmentation, and the
//! training loop over Burn's `Autodiff` (backend selection and the CIFAR reader live in
//! `alexnet-common`, shared with `alexnet-infer`).

pub mod cli;
pub mod data;
pub mod train;

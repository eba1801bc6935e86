//! Datasets shared by training and evaluation.

pub mod cifar;

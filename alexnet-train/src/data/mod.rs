//! Datasets shared by training and evaluation.

pub mod augment;
pub mod folder;
pub mod loader;
pub mod rng;
pub mod sample;
pub mod source;

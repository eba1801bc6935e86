//! Library part of `alexnet-train`, shared with `alexnet-infer`: backend selection (the one
//! place concrete backends are named) and, later, datasets and augmentation.

pub mod backend;

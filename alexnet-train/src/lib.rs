//! Library part of `alexnet-train`, shared with `alexnet-infer`: backend selection (the one
//! place concrete backends are named) and datasets.

pub mod backend;
pub mod data;

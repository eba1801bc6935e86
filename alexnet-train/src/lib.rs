//! Library part of `alexnet-train`, shared with `alexnet-infer`: backend selection (the one
//! place concrete backends are named) and datasets; and the training itself.

pub mod backend;
pub mod cli;
pub mod data;
pub mod train;

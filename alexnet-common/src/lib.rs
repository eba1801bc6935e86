//! What `alexnet-train` and `alexnet-infer` both need, and nothing that only training needs
//! (no autodiff or charts): the one place a concrete Burn backend is named ([`backend`]), the
//! CIFAR binary reader ([`cifar`]), image-folder walking ([`images`]), datasets by name and
//! their downloads ([`datasets`]: CIFAR, Imagenette, Imagewoof, Tiny ImageNet), shared flag
//! parsers ([`args`]), the binaries' memory allocator ([`allocator`]), weight files read with
//! a check of their values ([`weights`]) and the benchmarks' timing rule
//! ([`bench`](mod@bench)).

pub mod allocator;
pub mod args;
pub mod backend;
pub mod bench;
pub mod cifar;
pub mod datasets;
pub mod images;
pub mod weights;

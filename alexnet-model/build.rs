//! Compiles `proto/caffe.proto` (the subset of Caffe's schema that `.caffemodel` files need)
//! into Rust with protox (a protobuf compiler in Rust, so no `protoc` is needed) and
//! prost-build; `checkpoint/caffe.rs` includes the result from `OUT_DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/caffe.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}

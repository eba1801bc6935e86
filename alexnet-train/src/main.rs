//! `alexnet-train`: training CLI. Not written yet — the training loop, datasets and
//! augmentation are the subject of the training issue; this binary only reports that.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "error: alexnet-train is not implemented yet (see the training issue); use alexnet-infer"
    );
    ExitCode::FAILURE
}

//! The command-line contracts of `alexnet-infer info` and `bench`, run as a user would.

use std::process::{Command, Output};

fn infer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet-infer"))
        .args(args)
        .output()
        .expect("alexnet-infer runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn info_prints_layers_and_the_paper_total() {
    let out = infer(&["info", "--variant", "paper"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("total parameters: 60,965,224"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("conv1") && l.contains("96×55×55")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("lrn2")), "{text}");
}

#[test]
fn info_torchvision_total_and_class_count() {
    let out = infer(&["info", "--variant", "torchvision"]);
    assert!(stdout(&out).contains("total parameters: 61,100,840"));
    let out = infer(&["info", "--variant", "torchvision", "--num-classes", "10"]);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fc8") && l.contains("40,970")),
        "{text}"
    );
}

#[test]
fn info_caffe_input_of_the_paper() {
    let out = infer(&["info", "--variant", "paper", "--caffe-input"]);
    let text = stdout(&out);
    assert!(text.contains("input 3×227×227"), "{text}");
    assert!(text.contains("total parameters: 60,965,224"), "{text}");
}

#[test]
fn too_small_input_is_one_line_and_nonzero_exit() {
    let out = infer(&["info", "--variant", "torchvision", "--input-size", "62"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("63×63"), "{err}");
}

#[test]
fn bench_json_contract() {
    let out = infer(&[
        "bench",
        "--variant",
        "cifar",
        "--batch-size",
        "2",
        "--backend",
        "ndarray",
        "--warmup",
        "0",
        "--iters",
        "1",
        "--min-seconds",
        "0",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["backend"], "ndarray");
    assert_eq!(report["variant"], "cifar");
    assert_eq!(report["batch"], 2);
    assert!(report["images_per_s"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn unknown_backend_and_variant_are_errors() {
    let out = infer(&["bench", "--backend", "tpu"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown backend `tpu`"),
        "{}",
        stderr(&out)
    );
    let out = infer(&["info", "--variant", "vgg"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown variant `vgg`"),
        "{}",
        stderr(&out)
    );
}

//! `alexnet-infer convert` with Caffe's `.caffemodel` as input (the fixtures in
//! `fixtures/caffe/`, written by `fixtures/make_caffe_fixtures.py`): the safetensors it writes
//! loads strictly as the paper variant with Caffe's input and holds the Caffe file's tensors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alexnet_model::checkpoint::{read_checkpoint, resolve_config};
use alexnet_model::{AlexNetConfig, KeyLayout, LrnPreset, Variant};

fn caffe(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/caffe")
        .join(name)
}

fn convert(input: &Path, output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet-infer"))
        .args(["convert".as_ref(), input.as_os_str(), output.as_os_str()])
        .output()
        .expect("alexnet-infer runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A folder of its own in the temp folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "alexnet-caffe-convert-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn caffemodel_converts_to_safetensors_of_the_paper_variant() {
    let scratch = Scratch::new("safetensors");
    let expected = AlexNetConfig::paper(10)
        .with_caffe_input()
        .with_lrn(Some(LrnPreset::Caffe.config()))
        .with_widths([8, 16, 24, 24, 16])
        .with_hidden(32);
    for file in ["tiny_layer.caffemodel", "tiny_v1.caffemodel"] {
        let input = caffe(file);
        let output = scratch.0.join(format!("{file}.safetensors"));
        let run = convert(&input, &output);
        assert!(run.status.success(), "{file}: {}", stderr(&run));
        assert!(
            stderr(&run).contains("paper variant, 10 classes"),
            "{}",
            stderr(&run)
        );

        // Strictly the paper variant (every key, no other), with Caffe's input and LRN.
        let converted = read_checkpoint(&output).unwrap();
        let (config, layout) = resolve_config(&converted, Some(Variant::Paper)).unwrap();
        assert_eq!(config, expected, "{file}");
        assert_eq!(layout, KeyLayout::Sequential);

        // The Caffe file's tensors, under torchvision-style keys.
        let original = read_checkpoint(&input).unwrap().state_dict;
        let parameters = config.parameters().unwrap();
        assert_eq!(converted.state_dict.len(), parameters.len());
        for parameter in parameters {
            let key = parameter.key(KeyLayout::Sequential);
            assert_eq!(
                converted.state_dict[&key],
                original[&parameter.key(KeyLayout::Caffe)],
                "{file}: {key}"
            );
        }
    }
}

#[test]
fn caffemodel_output_is_refused_in_one_line() {
    let scratch = Scratch::new("refused");
    let output = scratch.0.join("out.caffemodel");
    let run = convert(&caffe("tiny_layer.caffemodel"), &output);
    assert!(!run.status.success());
    let text = stderr(&run);
    assert!(
        text.contains("writing Caffe .caffemodel files is not supported"),
        "{text}"
    );
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(!output.exists());
}

/// `classify --weights x.caffemodel` takes Caffe's transform by default (256×256, center 227,
/// BGR, 0–255 minus the mean pixel): its probabilities are those of the network on
/// `Preprocessing::caffe()`'s view of the image (the transform itself is checked against a
/// numpy reference in alexnet-model's preprocess tests), where torchvision's 224 crop would
/// not even fit the 227×227 network.
#[test]
fn classify_on_a_caffemodel_uses_caffes_preprocessing() {
    use alexnet_model::preprocess::{load_rgb, Preprocessing};
    use alexnet_model::tensor::HostTensor;
    use burn::backend::NdArray;
    use burn::tensor::activation::softmax;

    let image =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/preprocess/landscape.png");
    let weights = caffe("tiny_layer.caffemodel");
    let out = Command::new(env!("CARGO_BIN_EXE_alexnet-infer"))
        .args([
            "classify",
            "--backend",
            "ndarray",
            "--format",
            "json",
            "--top-k",
            "3",
        ])
        .arg("--weights")
        .arg(&weights)
        .arg(&image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let device = Default::default();
    let model = read_checkpoint(&weights)
        .unwrap()
        .into_model::<NdArray>(None, None, &device)
        .unwrap();
    let view = Preprocessing::caffe().center_view(&load_rgb(&image).unwrap());
    let input = view.to_tensor::<NdArray, 3>(&device).unsqueeze::<4>();
    let probs = HostTensor::from_tensor(softmax(model.forward(input), 1)).values;
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    for (got, &index) in line["top"].as_array().unwrap().iter().zip(&order) {
        assert_eq!(got["index"], index);
        let prob = got["prob"].as_f64().unwrap();
        assert!(
            (prob - probs[index] as f64).abs() <= 1e-5,
            "{prob} vs {}",
            probs[index]
        );
    }
}

//! Caffe `.caffemodel` files: both of Caffe's layer formats load as the paper variant with
//! Caffe's input and give PyTorch's logits (ndarray and flex), and files that are not
//! bvlc_alexnet's network are refused in one line naming the file and the layer. The fixtures
//! in `fixtures/caffe/` are written by `fixtures/make_caffe_fixtures.py`.

use std::path::PathBuf;

use alexnet_model::checkpoint::{
    detect_format, format_from_extension, read_checkpoint, save_model, WeightFormat,
};
use alexnet_model::tensor::HostTensor;
use alexnet_model::weights::read_safetensors;
use alexnet_model::{AlexNetBackend, AlexNetConfig, LrnPreset, Variant};

mod common;

use common::message;

/// The two files holding the tiny network: `layer` entries with `shape` blobs, and V1
/// `layers` with num/channels/height/width blobs.
const MODELS: [&str; 2] = ["tiny_layer.caffemodel", "tiny_v1.caffemodel"];

fn caffe(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/caffe")
        .join(name)
}

/// The configuration the fixtures' layers describe: the paper variant with Caffe's input and
/// LRN, at the script's tiny widths.
fn tiny_config() -> AlexNetConfig {
    AlexNetConfig::paper(10)
        .with_caffe_input()
        .with_lrn(Some(LrnPreset::Caffe.config()))
        .with_widths([8, 16, 24, 24, 16])
        .with_hidden(32)
}

/// PyTorch's input (bytes, as stored) and logits, after checking the script's settings.
fn expected() -> (HostTensor, HostTensor) {
    let bytes = std::fs::read(caffe("expected.safetensors")).unwrap();
    let (mut dict, meta) = read_safetensors(&bytes).unwrap();
    let config = tiny_config();
    let widths: Vec<usize> = serde_json::from_str(&meta["widths"]).unwrap();
    assert_eq!(widths, config.widths());
    assert_eq!(meta["hidden"], config.hidden.to_string());
    assert_eq!(meta["num_classes"], config.num_classes.to_string());
    assert_eq!(meta["input_size"], config.input_size.to_string());
    (
        dict.remove("input").unwrap(),
        dict.remove("logits").unwrap(),
    )
}

/// A fresh path in the temp folder, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Self {
        Temp(std::env::temp_dir().join(format!("alexnet-caffe-{}-{name}", std::process::id())))
    }

    fn with(name: &str, bytes: &[u8]) -> Self {
        let temp = Self::new(name);
        std::fs::write(&temp.0, bytes).unwrap();
        temp
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Both formats: detected by content, the configuration read from the layers, and PyTorch's
/// logits within 1e-4.
fn check_logits<B: AlexNetBackend>() {
    let device = Default::default();
    let (input, logits) = expected();
    for file in MODELS {
        let path = caffe(file);
        assert_eq!(detect_format(&path).unwrap(), WeightFormat::Caffe, "{file}");
        let checkpoint = read_checkpoint(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(checkpoint.config, Some(tiny_config()), "{file}");
        let model = checkpoint.into_model::<B>(None, None, &device).unwrap();
        let images = input
            .to_tensor::<B, 4>(&device)
            .sub_scalar(128.0)
            .div_scalar(64.0);
        let actual = HostTensor::from_tensor(model.try_forward(images).unwrap());
        assert_eq!(actual.shape, logits.shape);
        let diff = actual
            .values
            .iter()
            .zip(&logits.values)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0, f32::max);
        assert!(diff <= 1e-4, "{file}: max |Δ| = {diff}");
    }
}

#[test]
fn ndarray_gives_pytorchs_logits() {
    check_logits::<burn::backend::NdArray>();
}

#[test]
fn flex_gives_pytorchs_logits() {
    check_logits::<burn::backend::Flex>();
}

/// The V1 file's legacy 4-D blobs (fc weights 1×1×out×in) and the current file's `shape`
/// blobs (fc8's bias in `double_data`) give the same tensors under Caffe's layer names.
#[test]
fn both_formats_hold_the_same_state_dict() {
    let [current, v1] = MODELS.map(|file| read_checkpoint(&caffe(file)).unwrap());
    assert_eq!(current.state_dict, v1.state_dict);
    let keys: Vec<&str> = current.state_dict.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 16);
    assert!(
        keys.contains(&"conv1.weight") && keys.contains(&"fc8.bias"),
        "{keys:?}"
    );
    assert_eq!(current.state_dict["fc6.weight"].shape, [32, 16 * 6 * 6]);
    assert_eq!(current.state_dict["conv2.weight"].shape, [16, 4, 5, 5]);
}

#[test]
fn another_variant_is_refused_and_caffe_is_not_written() {
    let device = Default::default();
    let checkpoint = read_checkpoint(&caffe(MODELS[0])).unwrap();
    let error = checkpoint
        .into_model::<burn::backend::NdArray>(Some(Variant::Torchvision), None, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the file stores a paper network, not torchvision"),
        "{error}"
    );
    let out = Temp::new("out.caffemodel");
    assert_eq!(format_from_extension(&out.0), Some(WeightFormat::Caffe));
    let model = checkpoint
        .into_model::<burn::backend::NdArray>(None, None, &device)
        .unwrap();
    let text = message(save_model(&model, &out.0, WeightFormat::Caffe), &out.0);
    assert!(
        text.contains("writing Caffe .caffemodel files is not supported"),
        "{text}"
    );
}

/// Each broken fixture is refused in one line naming the file and the layer.
#[test]
fn files_that_are_not_bvlc_alexnet_are_refused_naming_the_layer() {
    let cases = [
        (
            "broken_caffenet_order.caffemodel",
            "layer `pool1` is a 3×3 max pool of stride 2, where the paper network \
             (bvlc_alexnet) has an LRN (size 5, alpha 0.0001, beta 0.75, k 1) (pool before LRN \
             is CaffeNet's order, a different network)",
        ),
        (
            "broken_missing_fc7.caffemodel",
            "2 inner-product layers (fc6, fc8) where the paper network has 3 (fc6, fc7, fc8)",
        ),
        (
            "broken_extra_fc9.caffemodel",
            "4 inner-product layers (fc6, fc7, fc8, fc9) where the paper network has 3",
        ),
        (
            "broken_wrong_group.caffemodel",
            "layer `conv2` (a convolution (16 outputs, 5×5, stride 1, pad 2, group 1)), weight \
             blob: shape [16, 4, 5, 5] where the layer needs [16, 8, 5, 5]",
        ),
        (
            "broken_short_blob.caffemodel",
            "layer `conv1` (a convolution (8 outputs, 11×11, stride 4, pad 0, group 1)), weight \
             blob: 2903 values for shape [8, 3, 11, 11] (2904 values)",
        ),
        (
            "broken_input_224.caffemodel",
            "the network's declared input [1, 3, 224, 224] is not [N, 3, 227, 227], Caffe's \
             AlexNet input",
        ),
        (
            "mean.binaryproto",
            "a single Caffe blob of shape [1, 3, 4, 4] (a mean image such as \
             imagenet_mean.binaryproto?), not a network's weights",
        ),
    ];
    for (file, expected) in cases {
        let path = caffe(file);
        assert_eq!(detect_format(&path).unwrap(), WeightFormat::Caffe, "{file}");
        let text = message(read_checkpoint(&path), &path);
        assert!(text.contains(expected), "{file}: {text}");
    }
}

/// Files written by hand, field by field: a V0 layer (Caffe before 2014), and both layer
/// fields at once.
#[test]
fn v0_layers_and_mixed_layer_fields_are_refused() {
    let cases: [(&[u8], &str); 2] = [
        // NetParameter.layers (2) { V1LayerParameter.layer (1) { V0LayerParameter.name (1) } }
        (
            b"\x12\x09\x0a\x07\x0a\x05conv1",
            "layer `conv1` is in Caffe's V0 format (2013), which is not read; Caffe's \
             upgrade_net_proto_binary converts it",
        ),
        // An empty V1 `layers` (2) entry and an empty `layer` (100) entry.
        (
            b"\x12\x00\xa2\x06\x00",
            "holds both `layer` and V1 `layers` entries; Caffe reads one or the other",
        ),
    ];
    for (i, (bytes, expected)) in cases.into_iter().enumerate() {
        let file = Temp::with(&format!("by-hand-{i}.caffemodel"), bytes);
        assert_eq!(detect_format(&file.0).unwrap(), WeightFormat::Caffe);
        let text = message(read_checkpoint(&file.0), &file.0);
        assert!(text.contains(expected), "{text}");
    }
}

#[test]
fn truncated_files_are_refused() {
    let bytes = std::fs::read(caffe(MODELS[1])).unwrap();
    for len in [
        1,
        2,
        9,
        100,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let file = Temp::with(&format!("truncated-{len}.caffemodel"), &bytes[..len]);
        message(read_checkpoint(&file.0), &file.0);
    }
    let file = Temp::with("cut.caffemodel", &bytes[..bytes.len() / 2]);
    let text = message(read_checkpoint(&file.0), &file.0);
    assert!(
        text.contains("not a Caffe .caffemodel: failed to decode"),
        "{text}"
    );
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes that start like a Caffe file, and the fixtures with random bytes changed or
/// cut: an error of one line naming the file, or a network that builds; never a panic.
#[test]
fn random_bytes_and_edits_never_panic() {
    let models = MODELS.map(|file| std::fs::read(caffe(file)).unwrap());
    let mut rng = Rng(2012);
    let device = Default::default();
    for case in 0..150 {
        let mut bytes = models[case % 2].clone();
        match case % 3 {
            0 => {
                bytes = (0..rng.below(3000)).map(|_| rng.next() as u8).collect();
                let tags: [&[u8]; 4] = [b"\x0a\x07", b"\x12", b"\xa2\x06", b"\x08\x01\x10"];
                let tag = tags[rng.below(tags.len())];
                bytes.splice(0..0, tag.iter().copied());
            }
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next() as u8;
                }
            }
            _ => bytes.truncate(rng.below(bytes.len())),
        }
        let file = Temp::with(&format!("random-{case}.caffemodel"), &bytes);
        match read_checkpoint(&file.0) {
            Ok(checkpoint) => {
                let built = checkpoint.into_model::<burn::backend::NdArray>(None, None, &device);
                if let Err(e) = built {
                    assert!(!e.to_string().contains('\n'), "{e}");
                }
            }
            Err(e) => {
                message::<()>(Err(e), &file.0);
            }
        }
    }
}

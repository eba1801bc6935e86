//! Weight files in and out: every format, layout, dtype and error case, against the fixtures
//! `fixtures/make_weight_fixtures.py` writes with PyTorch into `fixtures/weights/`.

use std::path::{Path, PathBuf};

use alexnet_model::checkpoint::{
    detect_format, format_from_extension, infer_config, load_model, read_checkpoint,
    read_state_dict, save_model, WeightFormat,
};
use alexnet_model::tensor::HostTensor;
use alexnet_model::weights::{read_safetensors, StateDict};
use alexnet_model::KeyLayout;
use alexnet_model::{AlexNet, AlexNetConfig, LrnPreset, Variant};

mod common;

use common::{formula_input, max_diff, message};

type B = burn::backend::NdArray;

const WIDTHS: [usize; 5] = [4, 8, 8, 8, 4];

fn weights(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/weights")
        .join(name)
}

/// A fresh path in the temp folder (removed by the caller's `Drop` guard).
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Self {
        Temp(std::env::temp_dir().join(format!("alexnet-ckpt-{}-{name}", std::process::id())))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn reference(key: &str) -> HostTensor {
    let bytes = std::fs::read(weights("reference.safetensors")).unwrap();
    let (dict, _) = read_safetensors(&bytes).unwrap();
    dict[key].clone()
}

fn logits<Bk: alexnet_model::AlexNetBackend>(model: &AlexNet<Bk>, side: usize) -> HostTensor {
    HostTensor::from_tensor(model.try_forward(formula_input(side)).unwrap())
}

#[test]
fn formats_are_detected_by_content() {
    use alexnet_model::checkpoint::WeightFormat::*;
    for (file, format) in [
        ("tv.pth", PytorchZip),
        ("tv_legacy.pth", PytorchLegacy),
        ("tv.safetensors", Safetensors),
        ("tv_safetensors_named.pth", Safetensors),
        ("tv_zip_named.safetensors", PytorchZip),
        ("tv_bf16_legacy.pth", PytorchLegacy),
        ("hostile_os_system.pth", PytorchZip),
    ] {
        assert_eq!(detect_format(&weights(file)).unwrap(), format, "{file}");
    }
    let model = load_model::<B>(&weights("tv.pth"), None, None, &Default::default()).unwrap();
    let out = Temp::new("detect.bpk");
    save_model(&model, &out.0, Burn).unwrap();
    assert_eq!(detect_format(&out.0).unwrap(), Burn);
    for file in ["empty.pth", "garbage.pth", "does_not_exist.pth"] {
        message(detect_format(&weights(file)), &weights(file));
    }
}

#[test]
fn output_format_from_extension() {
    use alexnet_model::checkpoint::WeightFormat::*;
    for (name, format) in [
        ("a.pth", Some(PytorchZip)),
        ("a.PT", Some(PytorchZip)),
        ("dir.v2/a.safetensors", Some(Safetensors)),
        ("a.bpk", Some(Burn)),
        ("a.burn", Some(Burn)),
        ("a.onnx", None),
        ("a", None),
    ] {
        assert_eq!(format_from_extension(Path::new(name)), format, "{name}");
    }
}

/// Each file loads (format, layout and variant detected) and gives PyTorch's logits.
#[test]
fn every_format_gives_pytorchs_logits() {
    let cases = [
        ("tv.pth", Variant::Torchvision, "logits_torchvision"),
        ("tv_legacy.pth", Variant::Torchvision, "logits_torchvision"),
        ("tv.safetensors", Variant::Torchvision, "logits_torchvision"),
        (
            "tv_safetensors_named.pth",
            Variant::Torchvision,
            "logits_torchvision",
        ),
        (
            "tv_zip_named.safetensors",
            Variant::Torchvision,
            "logits_torchvision",
        ),
        ("tv_wrapped.pth", Variant::Torchvision, "logits_torchvision"),
        ("tv_f16.pth", Variant::Torchvision, "logits_torchvision_f16"),
        (
            "tv_f16.safetensors",
            Variant::Torchvision,
            "logits_torchvision_f16",
        ),
        (
            "tv_bf16_legacy.pth",
            Variant::Torchvision,
            "logits_torchvision_bf16",
        ),
        ("paper.pth", Variant::Paper, "logits_paper"),
        ("paper_legacy.pth", Variant::Paper, "logits_paper"),
        ("paper.safetensors", Variant::Paper, "logits_paper"),
        ("paper_caffe_keys.pth", Variant::Paper, "logits_paper"),
        ("paper_wrapped_model.pth", Variant::Paper, "logits_paper"),
        ("cifar_f64.pth", Variant::Cifar, "logits_cifar"),
    ];
    let device = Default::default();
    for (file, variant, key) in cases {
        let model = load_model::<B>(&weights(file), None, None, &device)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let config = model.config();
        assert_eq!(config.variant, variant, "{file}");
        assert_eq!(config.widths(), WIDTHS, "{file}");
        assert_eq!((config.hidden, config.num_classes), (16, 10), "{file}");
        let side = match variant {
            Variant::Torchvision => 63,
            Variant::Paper => 224,
            Variant::Cifar => 32,
        };
        let diff = max_diff(&logits(&model, side), &reference(key));
        assert!(
            diff <= 1e-4,
            "{file}: logits differ from PyTorch's by {diff}"
        );
        // Forcing the right variant changes nothing.
        load_model::<B>(&weights(file), Some(variant), None, &device).unwrap();
    }
}

#[test]
fn all_containers_hold_the_same_tensors() {
    let zip = read_state_dict(&weights("tv.pth")).unwrap();
    for file in ["tv_legacy.pth", "tv.safetensors", "tv_wrapped.pth"] {
        assert_eq!(read_state_dict(&weights(file)).unwrap(), zip, "{file}");
    }
    assert!(zip.contains_key("features.0.weight") && zip.contains_key("classifier.6.bias"));
    let paper = read_state_dict(&weights("paper.pth")).unwrap();
    let caffe = read_state_dict(&weights("paper_caffe_keys.pth")).unwrap();
    assert_eq!(caffe["conv2.weight"], paper["features.4.weight"]);
    assert_eq!(caffe["fc8.bias"], paper["classifier.6.bias"]);
    let checkpoint = read_checkpoint(&weights("paper_legacy.pth")).unwrap();
    assert_eq!(checkpoint.format, WeightFormat::PytorchLegacy);
    assert_eq!(checkpoint.state_dict, paper);
    assert_eq!(checkpoint.config, None);
}

#[test]
fn shapes_tell_variant_widths_and_layout() {
    let dict = read_state_dict(&weights("tv.pth")).unwrap();
    let (config, layout) = infer_config(&dict, None).unwrap();
    let expected = AlexNetConfig::torchvision(10)
        .with_widths(WIDTHS)
        .with_hidden(16);
    assert_eq!((config, layout), (expected, KeyLayout::Sequential));

    let dict = read_state_dict(&weights("paper_caffe_keys.pth")).unwrap();
    let (config, layout) = infer_config(&dict, None).unwrap();
    let expected = AlexNetConfig::paper(10).with_widths(WIDTHS).with_hidden(16);
    assert_eq!((config.clone(), layout), (expected, KeyLayout::Caffe));
    // Caffe's 227 input cannot be told from the shapes: 224 (padding 2) is the default.
    assert_eq!((config.input_size, config.convs[0].padding), (224, 2));
}

/// Full-size presets and their variations, under both layouts: shapes alone give them back.
#[test]
fn every_preset_is_inferred_from_its_shapes() {
    let configs = [
        AlexNetConfig::torchvision(1000),
        AlexNetConfig::torchvision(7),
        AlexNetConfig::paper(1000),
        AlexNetConfig::paper(1000).with_lrn(None),
        AlexNetConfig::cifar(10),
        AlexNetConfig::cifar(100).with_lrn(Some(LrnPreset::CudaConvnet.config())),
        AlexNetConfig::cifar(10)
            .with_widths([8, 16, 24, 24, 16])
            .with_hidden(32),
    ];
    for config in configs {
        for layout in [KeyLayout::Sequential, KeyLayout::Caffe] {
            let dict: StateDict = config
                .parameters()
                .unwrap()
                .into_iter()
                .map(|p| {
                    let key = p.key(layout);
                    (
                        key,
                        HostTensor {
                            shape: p.shape,
                            values: vec![],
                        },
                    )
                })
                .collect();
            let (inferred, found) = infer_config(&dict, None).unwrap();
            assert_eq!(found, layout);
            let mut wanted = config.clone();
            if layout == KeyLayout::Caffe && config.variant != Variant::Torchvision {
                // Caffe names cannot show whether LRN layers exist: the preset decides.
                wanted.lrn = config.variant.config(10).lrn;
            }
            assert_eq!(inferred, wanted, "{layout:?} {config:?}");
        }
    }
}

#[test]
fn a_variant_the_shapes_contradict_is_an_error_naming_key_and_shapes() {
    let dict = read_state_dict(&weights("tv.pth")).unwrap();
    let text = infer_config(&dict, Some(Variant::Paper))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("`features.3.weight` has shape [8, 4, 5, 5]")
            && text.contains("expects [8, 2, 5, 5]")
            && text.contains("fit the torchvision variant"),
        "{text}"
    );
    let text = infer_config(&dict, Some(Variant::Cifar))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("`features.0.weight` has shape [4, 3, 11, 11]")
            && text.contains("[4, 3, 5, 5]"),
        "{text}"
    );
    let paper = read_state_dict(&weights("paper.pth")).unwrap();
    let text = infer_config(&paper, Some(Variant::Torchvision))
        .unwrap_err()
        .to_string();
    assert!(text.contains("fit the paper variant"), "{text}");

    let file = weights("tv_legacy.pth");
    let text = message(
        load_model::<B>(&file, Some(Variant::Paper), None, &Default::default()),
        &file,
    );
    assert!(
        text.contains("[8, 4, 5, 5]") && text.contains("[8, 2, 5, 5]"),
        "{text}"
    );
}

#[test]
fn every_mismatch_names_the_key_and_both_shapes() {
    let dict = read_state_dict(&weights("tv.pth")).unwrap();
    let error = |dict: &StateDict| infer_config(dict, None).unwrap_err().to_string();

    let mut missing = dict.clone();
    missing.remove("features.8.bias");
    let text = error(&missing);
    assert!(
        text.contains("missing key `features.8.bias`") && text.contains("[8]"),
        "{text}"
    );

    let mut extra = dict.clone();
    extra.insert(
        "classifier.7.weight".into(),
        HostTensor {
            shape: vec![2, 2],
            values: vec![0.0; 4],
        },
    );
    let text = error(&extra);
    assert!(
        text.contains("unexpected key `classifier.7.weight` (shape [2, 2])"),
        "{text}"
    );

    // Wrong class count in fc8's bias only.
    let mut classes = dict.clone();
    classes.insert(
        "classifier.6.bias".into(),
        HostTensor {
            shape: vec![9],
            values: vec![0.0; 9],
        },
    );
    let text = error(&classes);
    assert!(
        text.contains("`classifier.6.bias` has shape [9]") && text.contains("expects [10]"),
        "{text}"
    );

    // conv3 reads 8 channels but conv2 makes 6.
    let mut channels = dict.clone();
    channels.insert(
        "features.3.weight".into(),
        HostTensor {
            shape: vec![6, 4, 5, 5],
            values: vec![0.0; 600],
        },
    );
    channels.insert(
        "features.3.bias".into(),
        HostTensor {
            shape: vec![6],
            values: vec![0.0; 6],
        },
    );
    let text = error(&channels);
    assert!(
        text.contains("`features.6.weight` has shape [8, 8, 3, 3]")
            && text.contains("[8, 6, 3, 3]"),
        "{text}"
    );

    let text = error(&StateDict::new());
    assert!(text.contains("no AlexNet weights"), "{text}");

    // A model built for other classes refuses the file, naming key and shapes.
    let model = AlexNetConfig::torchvision(5)
        .with_widths(WIDTHS)
        .with_hidden(16)
        .init::<B>(&Default::default());
    let text = model
        .load_state_dict(&dict, KeyLayout::Sequential)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("`classifier.6.weight` has shape [10, 16]") && text.contains("[5, 16]"),
        "{text}"
    );
}

#[test]
fn hostile_pickles_are_refused_naming_the_global() {
    for (file, global) in [
        ("hostile_os_system.pth", "`posix.system`"),
        ("hostile_eval.pth", "`__builtin__.eval`"),
        ("hostile_stack_global.pth", "`posix.system`"),
        ("hostile_legacy.pth", "`posix.system`"),
    ] {
        let path = weights(file);
        for text in [
            message(read_state_dict(&path), &path),
            message(
                load_model::<B>(&path, None, None, &Default::default()),
                &path,
            ),
        ] {
            assert!(
                text.contains(global) && text.contains("refused"),
                "{file}: {text}"
            );
        }
    }
}

#[test]
fn broken_files_are_one_line_errors_naming_the_file() {
    for file in [
        "truncated.pth",
        "truncated_legacy.pth",
        "missing_storage.pth",
        "garbage.pth",
        "empty.pth",
        "does_not_exist.safetensors",
    ] {
        let path = weights(file);
        message(read_state_dict(&path), &path);
        message(
            load_model::<B>(&path, None, None, &Default::default()),
            &path,
        );
    }
    // Truncated copies of every format, and text under a weights extension.
    let model = load_model::<B>(&weights("tv.pth"), None, None, &Default::default()).unwrap();
    let burn = Temp::new("full.bpk");
    save_model(&model, &burn.0, WeightFormat::Burn).unwrap();
    for source in [
        weights("tv.safetensors"),
        weights("tv.pth"),
        weights("tv_legacy.pth"),
        burn.0.clone(),
    ] {
        let bytes = std::fs::read(&source).unwrap();
        for cut in [bytes.len() - 1, bytes.len() / 2, 40, 9, 3] {
            let name = source.file_name().unwrap().to_str().unwrap();
            let out = Temp::new(&format!("cut{cut}-{name}"));
            std::fs::write(&out.0, &bytes[..cut]).unwrap();
            message(read_state_dict(&out.0), &out.0);
        }
    }
    let text = Temp::new("text.safetensors");
    std::fs::write(&text.0, "{\"not\": \"weights\"}\n").unwrap();
    message(read_state_dict(&text.0), &text.0);
}

/// Export → import is bit-exact in both formats, also from a model whose fc6 is split.
#[test]
fn export_import_round_trip_is_bit_exact() {
    let device = Default::default();
    let source = weights("paper.pth");
    let original = read_state_dict(&source).unwrap();
    for max_param_bytes in [None, Some(4096)] {
        let model = load_model::<B>(&source, None, max_param_bytes, &device).unwrap();
        if max_param_bytes.is_some() {
            assert!(model.linears()[0].parts.len() > 1, "fc6 not split");
        }
        let expected = logits(&model, 224);
        for (format, ext) in [
            (WeightFormat::Safetensors, "safetensors"),
            (WeightFormat::Burn, "bpk"),
        ] {
            let out = Temp::new(&format!("{max_param_bytes:?}.{ext}"));
            save_model(&model, &out.0, format).unwrap();
            let checkpoint = read_checkpoint(&out.0).unwrap();
            assert_eq!(checkpoint.format, format);
            let stored = checkpoint.config.clone().expect("config stored");
            assert_eq!(stored, model.config().clone().with_max_param_bytes(None));
            let layout = if format == WeightFormat::Burn {
                KeyLayout::Caffe
            } else {
                KeyLayout::Sequential
            };
            let renamed = model.state_dict(layout);
            assert_eq!(checkpoint.state_dict, renamed, "{format:?}");
            for reload in [None, Some(2048)] {
                let loaded = load_model::<B>(&out.0, None, reload, &device).unwrap();
                assert_eq!(
                    loaded.state_dict(KeyLayout::Sequential),
                    original,
                    "{format:?}"
                );
                assert_eq!(logits(&loaded, 224).values, expected.values, "{format:?}");
            }
            // The stored configuration wins over inference, and must agree with --variant.
            let out_path = &out.0;
            let text = message(
                load_model::<B>(out_path, Some(Variant::Cifar), None, &device),
                out_path,
            );
            assert!(text.contains("stores a paper network"), "{text}");
        }
    }
    // The stored configuration keeps what shapes cannot tell (Caffe's 227 input).
    let config = AlexNetConfig::paper(10)
        .with_widths(WIDTHS)
        .with_hidden(16)
        .with_caffe_input();
    let model = config.init::<B>(&device);
    let out = Temp::new("caffe227.safetensors");
    save_model(&model, &out.0, WeightFormat::Safetensors).unwrap();
    let loaded = load_model::<B>(&out.0, None, None, &device).unwrap();
    assert_eq!(loaded.config(), &config);
    // Writing .pth is not supported: a clear error.
    let out = Temp::new("model.pth");
    let text = message(save_model(&model, &out.0, WeightFormat::PytorchZip), &out.0);
    assert!(text.contains("not supported"), "{text}");
}

/// The committed Rust export that `make_weight_fixtures.py` loads into PyTorch (strict) equals
/// a fresh export of tv.pth; `ALEXNET_WRITE_FIXTURES=1` rewrites it.
#[test]
fn rust_export_for_pytorch_is_up_to_date() {
    let model = load_model::<B>(&weights("tv.pth"), None, None, &Default::default()).unwrap();
    let committed = weights("exported_by_rust_tiny_torchvision.safetensors");
    let fresh = Temp::new("export.safetensors");
    save_model(&model, &fresh.0, WeightFormat::Safetensors).unwrap();
    let bytes = std::fs::read(&fresh.0).unwrap();
    if std::env::var_os("ALEXNET_WRITE_FIXTURES").is_some_and(|v| v == "1") {
        std::fs::write(&committed, &bytes).unwrap();
    }
    let old = std::fs::read(&committed).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with ALEXNET_WRITE_FIXTURES=1)",
            committed.display()
        )
    });
    assert!(
        old == bytes,
        "{} is stale: run with ALEXNET_WRITE_FIXTURES=1, then fixtures/make_weight_fixtures.py",
        committed.display()
    );
    // torchvision's keys, as PyTorch's load_state_dict(strict=True) wants them.
    let dict = read_state_dict(&committed).unwrap();
    assert_eq!(dict, read_state_dict(&weights("tv.pth")).unwrap());
}

/// Full-size check against a seeded `torchvision.models.alexnet()` (see the top of
/// `fixtures/make_weight_fixtures.py`): `ALEXNET_FULL=/tmp/alexnet_full`.
#[test]
#[ignore = "needs the 233 MB checkpoint written by make_weight_fixtures.py --full"]
fn full_size_torchvision() {
    type F = burn::backend::Flex;
    let stem = std::env::var("ALEXNET_FULL").expect("ALEXNET_FULL=/path/stem");
    let device = Default::default();
    let started = std::time::Instant::now();
    let model = load_model::<F>(Path::new(&format!("{stem}.pth")), None, None, &device).unwrap();
    println!("loaded in {:.2?}", started.elapsed());
    assert_eq!(model.config(), &AlexNetConfig::torchvision(1000));
    let bytes = std::fs::read(format!("{stem}.ref.safetensors")).unwrap();
    let (reference, _) = read_safetensors(&bytes).unwrap();
    let out = model.forward(reference["input"].to_tensor::<F, 4>(&device));
    let diff = max_diff(&HostTensor::from_tensor(out), &reference["logits"]);
    println!("max |logits - PyTorch| = {diff:e}");
    assert!(diff <= 1e-4, "{diff}");
    save_model(
        &model,
        Path::new(&format!("{stem}.rust.safetensors")),
        WeightFormat::Safetensors,
    )
    .unwrap();
}

/// Zip entry names are bytes: a name with a multi-byte character where a byte offset would
/// fall (`archive/é234.pkl`, which once sliced a `String` mid-character) is no panic.
#[test]
fn zip_entry_names_with_multibyte_characters() {
    let file = tv_with_entries(
        "multibyte.pth",
        &[(
            "archive/é234.pkl",
            b"\x80\x02}q\x00.".to_vec(), // an empty dict
            zip::CompressionMethod::Stored,
        )],
    );
    let dict = read_state_dict(&file.0).unwrap();
    assert_eq!(dict, read_state_dict(&weights("tv.pth")).unwrap());
}

fn view_fixture(name: &str) -> PathBuf {
    weights("views").join(name)
}

/// Transposed, sliced (storage offsets), expanded (stride 0), shared-storage, f16/f64 and
/// legacy-format views load exactly as `torch.load` loads them
/// (`fixtures/make_view_fixtures.py`).
#[test]
fn strided_views_load_as_pytorch_loads_them() {
    let bytes = std::fs::read(view_fixture("expected.safetensors")).unwrap();
    let (expected, _) = read_safetensors(&bytes).unwrap();
    let mut checked = 0;
    for stem in [
        "transposed",
        "sliced",
        "expanded",
        "shared",
        "views_f16",
        "views_legacy",
    ] {
        let dict = read_state_dict(&view_fixture(&format!("{stem}.pth"))).unwrap();
        let prefix = format!("{stem}/");
        let wanted: StateDict = expected
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
            .collect();
        assert!(!wanted.is_empty(), "{stem}");
        assert_eq!(dict, wanted, "{stem}");
        checked += wanted.len();
    }
    assert_eq!(checked, expected.len());
}

/// A view that reaches past its storage (size, offset or stride patched into a real file; a
/// negative size) is refused naming the key, as `torch.load` refuses it.
#[test]
fn views_outside_their_storage_are_refused_naming_the_key() {
    for file in [
        "view_out_of_storage.pth",
        "view_huge_offset.pth",
        "view_huge_stride.pth",
        "view_negative_size.pth",
    ] {
        let path = view_fixture(file);
        let text = message(read_state_dict(&path), &path);
        assert!(
            text.contains("`bad`: a view (offset")
                && (text.contains("does not fit its storage") || text.contains("malformed")),
            "{file}: {text}"
        );
    }
}

/// Copies `tv.pth` with `extra` entries added, the archive's own entries first.
fn tv_with_entries(name: &str, extra: &[(&str, Vec<u8>, zip::CompressionMethod)]) -> Temp {
    use std::io::Write;
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(weights("tv.pth")).unwrap()).unwrap();
    let file = Temp::new(name);
    let mut out = zip::ZipWriter::new(std::fs::File::create(&file.0).unwrap());
    let replaced: Vec<&str> = extra.iter().map(|(n, _, _)| *n).collect();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).unwrap();
        if !replaced.contains(&entry.name()) {
            out.raw_copy_file(entry).unwrap();
        }
    }
    for (entry, bytes, method) in extra {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(*method)
            .large_file(bytes.len() > u32::MAX as usize);
        out.start_file(*entry, options).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap();
    file
}

/// Pickles that would exhaust the stack, the memory or the time are stopped by the reader's
/// limits with one line naming the limit; a compressed storage that inflates past the storage
/// limit is refused before it is inflated.
#[test]
fn pickle_and_zip_limits_are_one_line_errors() {
    use zip::CompressionMethod::{Deflated, Stored};
    let name = {
        let archive =
            zip::ZipArchive::new(std::fs::File::open(weights("tv.pth")).unwrap()).unwrap();
        let names: Vec<String> = archive.file_names().map(str::to_string).collect();
        names.into_iter().find(|n| n.ends_with("data.pkl")).unwrap()
    };
    let deep = [vec![0x80, 0x02, b')'], vec![0x85; 1_000_000], vec![b'.']].concat();
    let mut doubling = vec![0x80, 0x02, b']'];
    for _ in 0..20_000 {
        doubling.extend([b'q', 0, b'K', 1, b'a']);
    }
    doubling.push(b'.');
    let mut memo = vec![0x80, 0x02, b'N'];
    for i in 0..200_000u32 {
        memo.push(b'r');
        memo.extend(i.to_le_bytes());
    }
    memo.push(b'.');
    for (case, pickle, wanted) in [
        (
            "deep",
            deep,
            "nests containers deeper than the reader's limit of 100",
        ),
        ("work", doubling, "builds more than the reader's limit"),
        ("memo", memo, "memoizes more than the reader's limit"),
    ] {
        let file = tv_with_entries(&format!("limit-{case}.pth"), &[(&name, pickle, Stored)]);
        let started = std::time::Instant::now();
        let text = message(read_state_dict(&file.0), &file.0);
        assert!(text.contains(wanted), "{case}: {text}");
        assert!(started.elapsed().as_secs() < 10, "{case}");
    }
    // A storage that inflates to more than the storage limit (1 GiB + 1 zeros, 1 MB deflated).
    let dir = name.strip_suffix("data.pkl").unwrap();
    let bomb = tv_with_entries(
        "limit-bomb.pth",
        &[(&format!("{dir}data/0"), vec![0; (1 << 30) + 1], Deflated)],
    );
    assert!(std::fs::metadata(&bomb.0).unwrap().len() < 8 << 20);
    let text = message(read_state_dict(&bomb.0), &bomb.0);
    assert!(
        text.contains("more than the reader's limit of 1073741824"),
        "{text}"
    );
}

/// A FIFO or a device given as weights is refused before it is opened (opening a FIFO would
/// wait for a writer), in one line naming the path and what it is.
#[cfg(unix)]
#[test]
fn weights_that_are_not_regular_files_are_refused_without_waiting() {
    let fifo = Temp::new("pipe.pth");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo.0)
        .status()
        .unwrap();
    assert!(made.success());
    for (path, kind) in [
        (fifo.0.clone(), "is a FIFO (named pipe), not a regular file"),
        (
            PathBuf::from("/dev/zero"),
            "is a character device, not a regular file",
        ),
        (std::env::temp_dir(), "is a directory, not a regular file"),
    ] {
        let text = message(read_state_dict(&path), &path);
        assert!(text.contains(kind), "{text}");
    }
}

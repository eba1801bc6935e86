//! The variants' structure: parameter counts, output shapes, input errors, config round trip,
//! initialisation and strict weight loading. Runs on ndarray (structure does not depend on
//! the backend; `parity.rs` covers the numbers on every backend).

use alexnet_model::config::{DropoutPlacement, InitScheme};
use alexnet_model::layers::{linear_slices, LayerShapes};
use alexnet_model::model::Feature;
use alexnet_model::{
    AlexNet, AlexNetConfig, AlexNetError, FeatureLayer, KeyLayout, LrnPreset, Variant,
};
use burn::backend::NdArray;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};

type B = NdArray;

fn images(batch: usize, height: usize, width: usize) -> Tensor<B, 4> {
    Tensor::random(
        [batch, 3, height, width],
        Distribution::Default,
        &Default::default(),
    )
}

fn model(config: &AlexNetConfig) -> AlexNet<B> {
    config.try_init(&Default::default()).expect("valid config")
}

/// Narrow versions of the presets: same layout, quick to run.
fn narrow(config: AlexNetConfig) -> AlexNetConfig {
    config.with_widths([8, 16, 24, 24, 16]).with_hidden(32)
}

#[test]
fn paper_has_60_965_224_parameters() {
    let config = AlexNetConfig::paper(1000);
    assert_eq!(model(&config).parameter_count(), 60_965_224);
    assert_eq!(
        LayerShapes::compute(&config, 224).unwrap().total_params(),
        60_965_224
    );
    let caffe = config.with_caffe_input();
    assert_eq!(
        LayerShapes::compute(&caffe, 227).unwrap().total_params(),
        60_965_224
    );
}

#[test]
fn torchvision_has_61_100_840_parameters() {
    let config = AlexNetConfig::torchvision(1000);
    assert_eq!(model(&config).parameter_count(), 61_100_840);
    assert_eq!(
        LayerShapes::compute(&config, 224).unwrap().total_params(),
        61_100_840
    );
}

/// `parameter_count` (shapes only) agrees with Burn's own count (which initialises).
#[test]
fn parameter_count_agrees_with_burn() {
    for config in [
        narrow(AlexNetConfig::paper(10)),
        narrow(AlexNetConfig::torchvision(10)),
    ] {
        let net = model(&config);
        assert_eq!(net.parameter_count(), net.num_params());
    }
}

fn feature_kind(layer: &Feature<B>) -> &'static str {
    match layer {
        Feature::Conv(_) => "conv",
        Feature::Relu(_) => "relu",
        Feature::Lrn(_) => "lrn",
        Feature::MaxPool(_) => "pool",
    }
}

#[test]
fn paper_layers_are_the_2012_network() {
    let net = model(&AlexNetConfig::paper(1000));
    let convs = net.convs();
    let weight_dims: Vec<Vec<usize>> = convs
        .iter()
        .map(|c| c.weight.lazy_shape().to_vec())
        .collect();
    assert_eq!(
        weight_dims,
        [
            [96, 3, 11, 11],
            [256, 48, 5, 5],
            [384, 256, 3, 3],
            [384, 192, 3, 3],
            [256, 192, 3, 3]
        ]
    );
    let groups: Vec<usize> = convs.iter().map(|c| c.groups).collect();
    assert_eq!(groups, [1, 2, 1, 2, 2]);
    let kinds: Vec<&str> = net.features.iter().map(feature_kind).collect();
    assert_eq!(
        kinds,
        [
            "conv", "relu", "lrn", "pool", "conv", "relu", "lrn", "pool", "conv", "relu", "conv",
            "relu", "conv", "relu", "pool"
        ],
        "conv → ReLU → LRN → pool, as in the paper"
    );
    assert!(net.avgpool.is_none());
    for layer in &net.features {
        if let Feature::MaxPool(pool) = layer {
            assert_eq!(pool.kernel_size, [3, 3]);
            assert_eq!(
                pool.stride,
                [2, 2],
                "overlapping pooling: stride 2, not the kernel size"
            );
        }
    }
    let fc6 = net.linears()[0];
    assert_eq!(fc6.dims(), (256 * 6 * 6, 4096));
    assert_eq!(fc6.parts.len(), 1);
    assert_eq!(net.config().lrn, Some(LrnPreset::CudaConvnet.config()));
    assert_eq!(
        net.config().dropout_placement,
        DropoutPlacement::AfterHidden
    );
}

#[test]
fn torchvision_layers_match_torchvision() {
    let net = model(&AlexNetConfig::torchvision(1000));
    let out: Vec<usize> = net
        .convs()
        .iter()
        .map(|c| c.weight.lazy_shape()[0])
        .collect();
    assert_eq!(out, [64, 192, 384, 256, 256]);
    assert!(!net.features.iter().any(|l| matches!(l, Feature::Lrn(_))));
    assert_eq!(net.avgpool.as_ref().unwrap().output_size, [6, 6]);
    assert_eq!(
        net.config().dropout_placement,
        DropoutPlacement::BeforeHidden
    );
}

/// The paper's initialisation: N(0, 0.01) weights, bias 1 on conv2/4/5 and fc6/7, else 0.
#[test]
fn paper_initialisation() {
    let net = model(&AlexNetConfig::paper(1000));
    let bias_of = |b: &Option<burn::module::Param<Tensor<B, 1>>>| {
        let v = b.as_ref().unwrap().val();
        (v.clone().min().into_scalar(), v.max().into_scalar())
    };
    let conv_biases = net.convs().into_iter().map(|c| bias_of(&c.bias));
    let fc_biases = net
        .linears()
        .into_iter()
        .map(|fc| bias_of(&fc.parts[0].bias));
    let biases: Vec<(f32, f32)> = conv_biases.chain(fc_biases).collect();
    let expected = [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    for (i, ((lo, hi), e)) in biases.iter().zip(expected).enumerate() {
        assert_eq!((*lo, *hi), (e, e), "bias of layer {i}");
    }
    let w = net.convs()[2].weight.val();
    let n = w.shape().num_elements() as f32;
    let mean = w.clone().mean().into_scalar();
    let std = (w.powf_scalar(2.0).sum().into_scalar() / n - mean * mean).sqrt();
    assert!(mean.abs() < 1e-4, "mean {mean}");
    assert!((std - 0.01).abs() < 1e-4, "std {std}");
}

/// PyTorch's default: U(-1/√fan_in, 1/√fan_in) for weights and biases.
#[test]
fn torchvision_initialisation_is_pytorchs_default() {
    let config = AlexNetConfig::torchvision(1000);
    assert_eq!(config.init, InitScheme::PyTorch);
    let net = model(&config);
    let bound = 1.0 / (64.0f32 * 5.0 * 5.0).sqrt(); // conv2: fan_in = 64·5·5
    for t in [
        net.convs()[1].weight.val().flatten::<1>(0, 3),
        net.convs()[1].bias.clone().unwrap().val(),
    ] {
        let (lo, hi) = (t.clone().min().into_scalar(), t.max().into_scalar());
        assert!(lo >= -bound && hi <= bound, "[{lo}, {hi}] outside ±{bound}");
        assert!(
            lo < -0.9 * bound && hi > 0.9 * bound,
            "[{lo}, {hi}] does not fill ±{bound}"
        );
    }
}

#[test]
fn output_shapes_at_each_input_size() {
    let cases = [
        (narrow(AlexNetConfig::paper(7)), 224, 224),
        (narrow(AlexNetConfig::paper(7)).with_caffe_input(), 227, 227),
        (narrow(AlexNetConfig::torchvision(7)), 224, 224),
        (narrow(AlexNetConfig::torchvision(7)), 63, 63),
        (narrow(AlexNetConfig::torchvision(7)), 160, 300),
        (narrow(AlexNetConfig::cifar(7)), 32, 32),
        (
            narrow(AlexNetConfig::cifar(7)).with_lrn(Some(LrnPreset::Caffe.config())),
            32,
            32,
        ),
    ];
    for (config, h, w) in cases {
        let net = model(&config);
        assert_eq!(
            net.try_forward(images(2, h, w)).unwrap().dims(),
            [2, 7],
            "{h}×{w}"
        );
        let fc7 = net.try_embed(images(2, h, w), FeatureLayer::Fc7).unwrap();
        assert_eq!(fc7.dims(), [2, 32]);
        let pool5 = net.try_embed(images(1, h, w), FeatureLayer::Pool5).unwrap();
        let side = if config.variant == Variant::Cifar {
            3
        } else {
            6
        };
        assert_eq!(pool5.dims(), [1, 16 * side * side]);
    }
}

#[test]
fn layer_table_of_the_paper_at_224() {
    let shapes = LayerShapes::compute(&AlexNetConfig::paper(1000), 224).unwrap();
    let table: Vec<(&str, Vec<usize>)> = shapes
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.shape.clone()))
        .collect();
    assert_eq!(
        table,
        [
            ("conv1", vec![96, 55, 55]),
            ("lrn1", vec![96, 55, 55]),
            ("pool1", vec![96, 27, 27]),
            ("conv2", vec![256, 27, 27]),
            ("lrn2", vec![256, 27, 27]),
            ("pool2", vec![256, 13, 13]),
            ("conv3", vec![384, 13, 13]),
            ("conv4", vec![384, 13, 13]),
            ("conv5", vec![256, 13, 13]),
            ("pool5", vec![256, 6, 6]),
            ("fc6", vec![4096]),
            ("fc7", vec![4096]),
            ("fc8", vec![1000]),
        ]
    );
    assert_eq!(shapes.layers[0].params, 96 * 3 * 11 * 11 + 96);
    assert_eq!(shapes.layers[3].params, 256 * 48 * 5 * 5 + 256);
}

#[test]
fn too_small_input_is_an_error_naming_the_minimum() {
    let config = narrow(AlexNetConfig::torchvision(10));
    assert_eq!(LayerShapes::minimum_input(&config), Some(63));
    let net = model(&config);
    let err = net.try_forward(images(1, 62, 62)).unwrap_err();
    let AlexNetError::InputTooSmall { size, hint, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*size, 62);
    assert!(hint.contains("63×63"), "{hint}");
    assert!(net.try_forward(images(1, 63, 62)).is_err());
    assert!(net.try_forward(images(1, 63, 63)).is_ok());
}

#[test]
fn wrong_input_shapes_are_errors() {
    let net = model(&narrow(AlexNetConfig::paper(10)));
    let err = net
        .try_forward(images(1, 256, 256))
        .unwrap_err()
        .to_string();
    assert!(err.contains("224×224"), "{err}");
    let grey: Tensor<B, 4> = Tensor::zeros([1, 1, 224, 224], &Default::default());
    let err = net.try_forward(grey).unwrap_err().to_string();
    assert!(err.contains("expected 3 channels, got 1"), "{err}");
    let net = model(&narrow(AlexNetConfig::cifar(10)));
    assert!(net.try_forward(images(1, 32, 32)).is_ok());
    let err = net.try_forward(images(1, 64, 64)).unwrap_err().to_string();
    assert!(err.contains("32×32"), "{err}");
}

#[test]
fn invalid_configs_are_errors() {
    let odd_groups = AlexNetConfig::paper(10).with_widths([8, 15, 24, 24, 16]);
    assert!(matches!(
        odd_groups.try_init::<B>(&Default::default()),
        Err(AlexNetError::InvalidConfig(_))
    ));
    let mut even_lrn = AlexNetConfig::paper(10);
    even_lrn.lrn.as_mut().unwrap().size = 4;
    let err = even_lrn.validate().unwrap_err().to_string();
    assert!(err.contains("odd"), "{err}");
    assert!(AlexNetConfig::cifar(0).validate().is_err());
    assert!(AlexNetConfig::cifar(10)
        .with_dropout(1.0)
        .validate()
        .is_err());
}

#[test]
fn config_json_round_trip() {
    for variant in [Variant::Paper, Variant::Torchvision, Variant::Cifar] {
        let config = variant.config(37).with_dropout(0.25);
        let json = serde_json::to_string_pretty(&config).unwrap();
        let back: AlexNetConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        assert!(json.contains("\"num_classes\": 37"), "{json}");
    }
    let caffe = AlexNetConfig::paper(1000).with_caffe_input();
    let path = std::env::temp_dir().join(format!("alexnet-config-{}.json", std::process::id()));
    burn::config::Config::save(&caffe, &path).unwrap();
    let loaded: AlexNetConfig = burn::config::Config::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, caffe);
}

#[test]
fn variant_names_parse() {
    for variant in [Variant::Paper, Variant::Torchvision, Variant::Cifar] {
        assert_eq!(Variant::parse(variant.name()).unwrap(), variant);
    }
    assert!(Variant::parse("vgg")
        .unwrap_err()
        .to_string()
        .contains("vgg"));
}

#[test]
fn state_dict_round_trip_is_exact() {
    for config in [
        narrow(AlexNetConfig::paper(10)),
        narrow(AlexNetConfig::torchvision(10)),
    ] {
        let a = model(&config);
        let dict = a.state_dict(KeyLayout::Sequential);
        let b = model(&config)
            .load_state_dict(&dict, KeyLayout::Sequential)
            .unwrap();
        assert_eq!(b.state_dict(KeyLayout::Sequential), dict);
        let caffe = a.state_dict(KeyLayout::Caffe);
        assert!(caffe.contains_key("fc6.weight") && caffe.contains_key("conv5.bias"));
    }
}

#[test]
fn torchvision_keys_and_pytorch_shapes() {
    let dict = model(&narrow(AlexNetConfig::torchvision(10))).state_dict(KeyLayout::Sequential);
    let keys: Vec<&str> = dict.keys().map(String::as_str).collect();
    let mut expected = vec![];
    for p in [
        "features.0",
        "features.3",
        "features.6",
        "features.8",
        "features.10",
    ] {
        expected.extend([format!("{p}.weight"), format!("{p}.bias")]);
    }
    for p in ["classifier.1", "classifier.4", "classifier.6"] {
        expected.extend([format!("{p}.weight"), format!("{p}.bias")]);
    }
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(
        dict["classifier.1.weight"].shape,
        [32, 16 * 36],
        "PyTorch's [out, in]"
    );
}

#[test]
fn strict_loading_names_the_key_and_shapes() {
    let config = narrow(AlexNetConfig::torchvision(10));
    let good = model(&config).state_dict(KeyLayout::Sequential);

    let mut missing = good.clone();
    missing.remove("features.3.bias");
    let err = model(&config)
        .load_state_dict(&missing, KeyLayout::Sequential)
        .unwrap_err();
    assert!(
        err.to_string().contains("missing key `features.3.bias`"),
        "{err}"
    );

    let mut extra = good.clone();
    extra.insert("features.99.weight".into(), good["features.0.bias"].clone());
    let err = model(&config)
        .load_state_dict(&extra, KeyLayout::Sequential)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unexpected key `features.99.weight`"),
        "{err}"
    );

    let other = model(&narrow(AlexNetConfig::torchvision(12))).state_dict(KeyLayout::Sequential);
    let err = model(&config)
        .load_state_dict(&other, KeyLayout::Sequential)
        .unwrap_err();
    assert!(
        err.to_string().contains("[12, 32]") && err.to_string().contains("[10, 32]"),
        "{err}"
    );
}

/// Splitting the fully connected layers (for backends with a buffer limit) changes storage,
/// not results: same state dict, same logits.
#[test]
fn split_fc_layers_compute_the_same() {
    let config = narrow(AlexNetConfig::torchvision(10));
    let whole = model(&config);
    let dict = whole.state_dict(KeyLayout::Sequential);
    // fc6's weight is 576×32 floats = 73,728 bytes: a 20,000-byte limit needs 4 slices.
    let split_config = config.clone().with_max_param_bytes(Some(20_000));
    let split = model(&split_config)
        .load_state_dict(&dict, KeyLayout::Sequential)
        .unwrap();
    assert_eq!(split.linears()[0].parts.len(), 4);
    assert_eq!(split.linears()[2].parts.len(), 1);
    assert_eq!(split.parameter_count(), whole.parameter_count());
    assert_eq!(split.state_dict(KeyLayout::Sequential), dict);
    let x = images(2, 100, 100);
    let (a, b) = (
        whole.try_forward(x.clone()).unwrap(),
        split.try_forward(x).unwrap(),
    );
    let diff = (a - b).abs().max().into_scalar();
    assert!(diff < 1e-6, "{diff}");
}

#[test]
fn full_size_fc6_splits_under_the_webgpu_limit() {
    use alexnet_model::config::WEBGPU_MAX_BINDING_BYTES;
    let limit = Some(WEBGPU_MAX_BINDING_BYTES);
    assert_eq!(
        linear_slices(9216, 4096, limit).unwrap(),
        2,
        "151 MB → two 75.5 MB halves"
    );
    assert_eq!(linear_slices(4096, 4096, limit).unwrap(), 1);
    let tiny_limit = AlexNetConfig::paper(1000).with_max_param_bytes(Some(8));
    let err = tiny_limit.validate().unwrap_err().to_string();
    assert!(
        err.contains("9216×4096") && err.contains("8 bytes"),
        "{err}"
    );
}

/// Loading weights into a model on an autodiff backend keeps its parameters trainable.
#[test]
fn loaded_parameters_still_require_gradients() {
    type AD = burn::backend::Autodiff<NdArray>;
    let config = narrow(AlexNetConfig::cifar(10));
    let dict = model(&config).state_dict(KeyLayout::Sequential);
    let fresh: AlexNet<AD> = config.init(&Default::default());
    assert!(fresh.convs()[0].weight.val().is_require_grad());
    let loaded = fresh.load_state_dict(&dict, KeyLayout::Sequential).unwrap();
    assert!(loaded.convs()[0].weight.val().is_require_grad());
    assert!(loaded.linears()[0].parts[0]
        .bias
        .as_ref()
        .unwrap()
        .val()
        .is_require_grad());
}

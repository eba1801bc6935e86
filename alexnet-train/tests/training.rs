//! Training on generated data: learning, resumption, artifacts.

mod common;

use alexnet_model::weights::read_safetensors;
use alexnet_model::AlexNetConfig;
use alexnet_model::KeyLayout;
use alexnet_train::train::metrics::Summary;
use alexnet_train::train::schedule::ScheduleKind;
use alexnet_train::train::{self, new_run_dir, EpochMetrics, RunOptions, TrainConfig};
use common::*;

fn quiet() -> RunOptions {
    RunOptions {
        quiet: true,
        ..RunOptions::default()
    }
}

fn fresh_run(config: &TrainConfig, data: &alexnet_train::data::source::Splits) -> train::Outcome {
    let dir = new_run_dir(config).unwrap();
    train::run(config, data, &dir, false, &quiet()).unwrap()
}

#[test]
fn tiny_model_learns_a_separable_task() {
    let _lock = train_lock();
    let out = temp_dir("learns");
    let data = colour_splits(240, 60);
    // A small cifar-layout network. Without normalisation layers and with PyTorch's default
    // initialisation, a net this narrow first barely moves (tiny activations), then learns
    // fast, and can later lose a class to dead ReLUs; the best epoch is what `--patience` and
    // `model-best.safetensors` keep. Narrower nets ([8, 16, 16, 16, 16], hidden 32) get there
    // with some seeds only.
    let config = TrainConfig {
        widths: Some([16, 32, 32, 32, 32]),
        hidden: Some(128),
        epochs: 6,
        lr: 0.01,
        batch_size: 16,
        schedule: ScheduleKind::Constant,
        dropout: Some(0.0),
        ..tiny_config(&out)
    };
    let outcome = fresh_run(&config, &data);
    let summary = outcome.summary.expect("complete run");
    assert!(
        summary.best.top1 >= 0.95,
        "best validation top-1 {:.3}: {:?}",
        summary.best.top1,
        outcome.history
    );
    let first = &outcome.history[0];
    let last = outcome.history.last().unwrap();
    assert!(
        last.train_loss < 0.8 * first.train_loss,
        "{:?}",
        outcome.history
    );
    assert_eq!(last.val_top5, 1.0); // 3 classes
    assert_eq!(summary.final_scores.top1, last.val_top1);
    assert!(summary.train_images_per_second > 0.0);
    let _ = std::fs::remove_dir_all(out);
}

/// The metrics of a run without the wall times (which differ run to run).
fn comparable(history: &[EpochMetrics]) -> Vec<EpochMetrics> {
    history
        .iter()
        .map(|m| EpochMetrics {
            seconds: 0.0,
            train_seconds: 0.0,
            ..m.clone()
        })
        .collect()
}

#[test]
fn interrupted_and_resumed_equals_uninterrupted() {
    let _lock = train_lock();
    let out = temp_dir("resume");
    let data = colour_splits(96, 30);
    // Dropout, augmentation, momentum and a plateau schedule all carry state across epochs.
    let config = TrainConfig {
        epochs: 3,
        schedule: ScheduleKind::Plateau,
        plateau_patience: 0,
        lr: 0.05,
        run_name: Some("whole".into()),
        ..tiny_config(&out)
    };
    let whole = fresh_run(&config, &data);
    assert_eq!(whole.history.len(), 3);

    let config = TrainConfig {
        run_name: Some("parts".into()),
        ..config
    };
    let dir = new_run_dir(&config).unwrap();
    let stopped = RunOptions {
        stop_after: Some(1),
        quiet: true,
    };
    let first = train::run(&config, &data, &dir, false, &stopped).unwrap();
    assert_eq!(first.history.len(), 1);
    assert!(first.summary.is_none());
    assert!(!dir.join("summary.json").exists());
    let resumed = train::run(&config, &data, &dir, true, &quiet()).unwrap();
    assert_eq!(comparable(&resumed.history), comparable(&whole.history));
    assert!(resumed.summary.is_some());

    // Same final weights, bit for bit.
    let weights = |dir: &std::path::Path| {
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        read_safetensors(&bytes).unwrap().0
    };
    assert!(
        weights(&whole.run_dir) == weights(&dir),
        "final weights differ"
    );

    // Resuming a finished run changes nothing.
    let again = train::run(&config, &data, &dir, true, &quiet()).unwrap();
    assert_eq!(comparable(&again.history), comparable(&whole.history));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn run_folder_holds_every_artifact() {
    let _lock = train_lock();
    let out = temp_dir("artifacts");
    let data = colour_splits(48, 15);
    let config = TrainConfig {
        epochs: 3,
        keep_checkpoints: 2,
        patience: Some(50),
        ..tiny_config(&out)
    };
    let outcome = fresh_run(&config, &data);
    let dir = &outcome.run_dir;
    for file in [
        "config.json",
        "metrics.csv",
        "model.safetensors",
        "model.bpk",
        "model-best.safetensors",
        "summary.json",
        "curves.png",
        "confusion.png",
    ] {
        assert!(dir.join(file).is_file(), "missing {file}");
    }
    // config.json: every option, and what was derived.
    let config_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config_json["config"]["epochs"], 3);
    assert_eq!(config_json["config"]["momentum"], 0.9);
    assert_eq!(config_json["resolved"]["transform"]["pad"], 4);
    assert_eq!(config_json["resolved"]["classes"][2], "blue");
    // metrics.csv: header and one row per epoch.
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with(
        "epoch,train_loss,train_top1,train_top5,val_loss,val_top1,val_top5,lr,seconds"
    ));
    assert!(lines[3].starts_with("3,"));
    // summary.json.
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!((summary.epochs, summary.batch_size), (3, 16));
    // Only the newest two checkpoints remain.
    let states = train::checkpoint::complete_epochs(&dir.join("checkpoints")).unwrap();
    assert_eq!(states, [2, 3]);
    // The safetensors file loads strictly into a fresh model of the same configuration.
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let (dict, metadata) = read_safetensors(&bytes).unwrap();
    assert!(metadata.contains_key("alexnet_config"), "{metadata:?}");
    assert!(dict.contains_key("features.0.weight") && dict.contains_key("classifier.6.bias"));
    #[cfg(feature = "ndarray")]
    {
        let model_config = AlexNetConfig::cifar(3)
            .with_widths([8, 16, 16, 16, 16])
            .with_hidden(32);
        let device = Default::default();
        let model = model_config
            .init::<burn::backend::NdArray>(&device)
            .load_state_dict(&dict, KeyLayout::Sequential)
            .unwrap();
        assert_eq!(model.config().num_classes, 3);
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn early_stopping_ends_the_run() {
    let _lock = train_lock();
    let out = temp_dir("early");
    let data = colour_splits(24, 9);
    // A learning rate too small to move the validation loss much: patience 1 stops early
    // as soon as one epoch fails to improve it.
    let config = TrainConfig {
        epochs: 30,
        patience: Some(1),
        lr: 1e-9,
        ..tiny_config(&out)
    };
    let outcome = fresh_run(&config, &data);
    let summary = outcome.summary.unwrap();
    assert!(summary.stopped_early, "{:?}", outcome.history);
    assert!(summary.epochs < 30);
    let _ = std::fs::remove_dir_all(out);
}

/// Conv and fc tensors of a safetensors export.
fn exported(path: &std::path::Path) -> alexnet_model::weights::StateDict {
    read_safetensors(&std::fs::read(path).unwrap()).unwrap().0
}

/// The colour task and a one-epoch run on it: a "pre-trained" model to fine-tune.
fn pretrained(out: &std::path::Path) -> (alexnet_train::data::source::Splits, train::Outcome) {
    let data = colour_splits(48, 15);
    let config = TrainConfig {
        epochs: 1,
        ..tiny_config(out)
    };
    let base = fresh_run(&config, &data);
    (data, base)
}

#[test]
fn fine_tuning_with_frozen_features_trains_only_the_classifier() {
    let _lock = train_lock();
    let out = temp_dir("freeze");
    let (data, base) = pretrained(&out);
    let initial = base.run_dir.join("model.safetensors");
    // Fine-tune it with conv1..conv5 frozen, interrupted after epoch 1 and resumed.
    let config = TrainConfig {
        epochs: 2,
        weights: Some(initial.clone()),
        freeze_features: true,
        run_name: Some("frozen".into()),
        ..tiny_config(&out)
    };
    let dir = new_run_dir(&config).unwrap();
    let options = RunOptions {
        stop_after: Some(1),
        ..quiet()
    };
    train::run(&config, &data, &dir, false, &options).unwrap();
    let outcome = train::run(&config, &data, &dir, true, &quiet()).unwrap();
    assert_eq!(outcome.history.len(), 2);
    let before = exported(&initial);
    let after = exported(&dir.join("model.safetensors"));
    for i in [0, 3, 6, 8, 10] {
        for suffix in ["weight", "bias"] {
            let key = format!("features.{i}.{suffix}");
            assert_eq!(before[&key], after[&key], "{key} changed although frozen");
        }
    }
    for key in [
        "classifier.0.weight",
        "classifier.3.weight",
        "classifier.6.bias",
    ] {
        assert_ne!(before[key], after[key], "{key} did not train");
    }
    // Without --freeze-features the same fine-tuning moves the convolutions too.
    let config = TrainConfig {
        epochs: 1,
        weights: Some(initial.clone()),
        run_name: Some("unfrozen".into()),
        ..tiny_config(&out)
    };
    let dir = new_run_dir(&config).unwrap();
    train::run(&config, &data, &dir, false, &quiet()).unwrap();
    let after = exported(&dir.join("model.safetensors"));
    assert_ne!(before["features.0.weight"], after["features.0.weight"]);
    let _ = std::fs::remove_dir_all(out);
}

#[cfg(feature = "flex")]
#[test]
fn fine_tuning_reads_burnpack_and_replaces_a_head_of_another_size() {
    let _lock = train_lock();
    let out = temp_dir("finetune-bpk");
    let (_, base) = pretrained(&out);
    let expected = exported(&base.run_dir.join("model.safetensors"));
    // The Burnpack export gives the same starting point as the safetensors one.
    type B = burn::backend::Autodiff<burn::backend::Flex>;
    let device = Default::default();
    let fresh = || {
        AlexNetConfig::cifar(3)
            .with_widths([8, 16, 16, 16, 16])
            .with_hidden(32)
            .init::<B>(&device)
    };
    let (model, replaced) =
        train::export::load_initial(fresh(), &base.run_dir.join("model.bpk"), false).unwrap();
    assert!(!replaced);
    assert_eq!(model.state_dict(KeyLayout::Sequential), expected);
    // Loaded parameters still train (require gradients on the autodiff backend).
    assert!(
        model.convs()[0].weight.is_require_grad()
            && model.linears()[2].parts[0].weight.is_require_grad()
    );
    // Five classes: fc8 is fresh, everything else loaded.
    let five = AlexNetConfig::cifar(5)
        .with_widths([8, 16, 16, 16, 16])
        .with_hidden(32)
        .init::<B>(&device);
    let (model, replaced) =
        train::export::load_initial(five, &base.run_dir.join("model.safetensors"), false).unwrap();
    assert!(replaced);
    let dict = model.state_dict(KeyLayout::Sequential);
    assert_eq!(dict["features.0.weight"], expected["features.0.weight"]);
    assert_eq!(dict["classifier.6.weight"].shape, [5, 32]);
    // A file of another architecture is one error naming the key and both shapes.
    let wide = AlexNetConfig::cifar(3)
        .with_widths([16, 16, 16, 16, 16])
        .with_hidden(32)
        .init::<B>(&device);
    let err = train::export::load_initial(wide, &base.run_dir.join("model.safetensors"), false)
        .expect_err("shape mismatch");
    let message = format!("{err:#}");
    assert!(
        message.contains("features.0.weight") && message.contains("16"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[cfg(feature = "flex")]
#[test]
fn data_parallel_gradient_equals_the_whole_batch_gradient() {
    use alexnet_train::data::loader::Batch;
    use alexnet_train::train::parallel::batch_gradients;
    use burn::optim::{Optimizer, SgdConfig};
    type B = burn::backend::Autodiff<burn::backend::Flex>;

    let _lock = train_lock();
    let device = Default::default();
    let mut config = AlexNetConfig::cifar(3)
        .with_widths([8, 16, 16, 16, 16])
        .with_hidden(32);
    config.dropout = 0.0;
    let model = config.init::<B>(&device);
    // 7 images: shards of 4+3 on two devices, 2+2+2+1 on four.
    let side = 32;
    let images: Vec<f32> = (0..7 * 3 * side * side)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let batch = Batch {
        images,
        labels: vec![0, 1, 2, 0, 1, 2, 1],
        side,
    };
    // One plain SGD step (lr 1) on the summed gradient exposes every parameter's gradient.
    let step = |devices: &[burn::tensor::Device<B>]| {
        let out = batch_gradients(&model, &batch, devices).unwrap();
        let mut sgd = SgdConfig::new().init::<B, alexnet_model::AlexNet<B>>();
        let stepped = sgd.step(1.0, model.clone(), out.grads);
        (
            out.loss,
            out.logits,
            stepped.state_dict(KeyLayout::Sequential),
        )
    };
    let (loss1, logits1, after1) = step(std::slice::from_ref(&device));
    let before = model.state_dict(KeyLayout::Sequential);
    assert_ne!(before["features.0.weight"], after1["features.0.weight"]);
    for devices in [vec![device; 2], vec![device; 4]] {
        let (loss, logits, after) = step(&devices);
        assert!((loss - loss1).abs() < 1e-6, "{loss} vs {loss1}");
        assert_eq!(logits.len(), logits1.len());
        for (a, b) in logits.iter().zip(&logits1) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        for (key, tensor) in &after1 {
            let other = &after[key];
            let worst = tensor
                .values
                .iter()
                .zip(&other.values)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{key}: {} devices differ by {worst}",
                devices.len()
            );
        }
    }
}

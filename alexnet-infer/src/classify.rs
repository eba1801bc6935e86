//! `alexnet-infer classify`: top-k classes of images or folders of images.

use std::path::PathBuf;

use alexnet_common::backend::{dispatch, BackendJob};
use alexnet_model::labels::Labels;
use alexnet_model::AlexNet;
use alexnet_model::AlexNetBackend;
use anyhow::{bail, Result};
use burn::tensor::activation::softmax;
use clap::Args;
use serde::Serialize;

use crate::inputs::{
    check_batch_memory, collect_images, keep_readable, prepare_views, progress, stack,
    PreprocessArgs, ReportArgs, WeightArgs,
};
use crate::Format;
use alexnet_model::files::escape_control;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    #[command(flatten)]
    weights: WeightArgs,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// Images, or folders searched recursively for images.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Classes to print per image.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    #[command(flatten)]
    report: ReportArgs,
}

/// One predicted class.
#[derive(Debug, Serialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub prob: f32,
}

#[derive(Serialize)]
struct ImageResult<'a> {
    path: &'a str,
    top: Vec<Prediction>,
}

/// Loads labels from `--labels`, or ImageNet's when the model has 1000 classes.
pub fn labels_for(path: Option<&PathBuf>, num_classes: usize) -> Result<Option<Labels>> {
    match path {
        Some(path) => {
            let labels = Labels::from_file(path)?;
            if labels.len() != num_classes {
                bail!(
                    "{} has {} labels but the model has {num_classes} classes",
                    path.display(),
                    labels.len()
                );
            }
            Ok(Some(labels))
        }
        None if num_classes == 1000 => Ok(Some(Labels::imagenet())),
        None => Ok(None),
    }
}

/// The `k` most probable classes of one probability row.
pub fn top_k(probs: &[f32], k: usize, labels: Option<&Labels>) -> Vec<Prediction> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    order
        .into_iter()
        .take(k)
        .map(|index| Prediction {
            index,
            label: labels.map_or_else(|| format!("class {index}"), |l| l.name(index)),
            prob: probs[index],
        })
        .collect()
}

/// Class probabilities `[images, classes]` of a batch of views, averaged over each image's
/// `views_per_image` consecutive views (1, or 10 for ten-crop).
pub fn probabilities<B: AlexNetBackend>(
    model: &AlexNet<B>,
    views: &[alexnet_model::tensor::HostTensor],
    views_per_image: usize,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let logits = model.try_forward(stack::<B>(views, device))?;
    let [n, classes] = logits.dims();
    let probs = softmax(logits, 1)
        .reshape([n / views_per_image, views_per_image, classes])
        .mean_dim(1)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading probabilities: {e:?}"))?;
    Ok(probs.chunks(classes).map(<[f32]>::to_vec).collect())
}

struct Classify<'a> {
    args: &'a ClassifyArgs,
    images: Vec<PathBuf>,
}

impl BackendJob for Classify<'_> {
    /// Number of images that could not be classified.
    type Output = usize;

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<usize> {
        let args = self.args;
        let model = args.weights.load::<B>(&device)?;
        let config = model.config().clone();
        let labels = labels_for(args.report.labels.as_ref(), config.num_classes)?;
        let preprocessing = args
            .preprocess
            .apply(args.weights.default_preprocessing(&config))?;
        let views_per_image = args.report.views_per_image();
        let batch_size = args.report.batch()?;
        check_batch_memory(&config, &preprocessing, batch_size, views_per_image)?;
        let bar = progress(self.images.len(), "classifying");
        let mut failed = 0;
        let strict = args.preprocess.strict_images;
        for batch in self.images.chunks(batch_size) {
            let prepared = prepare_views(batch, &preprocessing, args.report.ten_crop, strict);
            let (ok_paths, views, batch_failed) = keep_readable(batch, prepared, &bar);
            failed += batch_failed;
            if !ok_paths.is_empty() {
                let probs = probabilities(&model, &views, views_per_image, &device)?;
                bar.suspend(|| print_results(&ok_paths, &probs, args, labels.as_ref()))?;
            }
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
        Ok(failed)
    }
}

fn print_results(
    paths: &[&PathBuf],
    probs: &[Vec<f32>],
    args: &ClassifyArgs,
    labels: Option<&Labels>,
) -> Result<()> {
    for (path, row) in paths.iter().zip(probs) {
        let top = top_k(row, args.top_k, labels);
        let path = path.display().to_string();
        match args.report.format {
            Format::Json => {
                let line = serde_json::to_string(&ImageResult { path: &path, top })?;
                println!("{line}");
            }
            Format::Text => {
                // A file name's control characters (newlines, ANSI escapes) are escaped.
                println!("{}", escape_control(&path));
                for p in top {
                    let label = escape_control(&p.label);
                    println!("  {:>6.2}%  {:>4}  {label}", 100.0 * p.prob, p.index);
                }
            }
        }
    }
    Ok(())
}

pub fn run(args: &ClassifyArgs) -> Result<()> {
    anyhow::ensure!(args.top_k > 0, "--top-k must be positive");
    let images = collect_images(&args.paths)?;
    let total = images.len();
    let failed = dispatch(args.weights.backend()?, Classify { args, images })?;
    if failed > 0 {
        bail!("{failed} of {total} images could not be read");
    }
    Ok(())
}

//! `alexnet-infer eval`: top-1 / top-5 accuracy on a labelled dataset.

use std::path::{Path, PathBuf};

use alexnet_common::backend::{dispatch, BackendJob};
use alexnet_common::cifar::{self, CifarKind};
use alexnet_common::datasets::subsets::{ImageSize, Subset, SubsetFolder};
use alexnet_common::images::{class_folders, image_files};
use alexnet_model::labels::Labels;
use alexnet_model::AlexNetBackend;
use anyhow::{bail, Context, Result};
use clap::Args;
use image::RgbImage;
use serde::Serialize;

use crate::classify::{labels_for, probabilities};
use crate::inputs::{
    check_batch_memory, keep_readable, load_image, prepare_with, progress, PreprocessArgs,
    ReportArgs, WeightArgs,
};
use crate::Format;
use alexnet_model::files::escape_control;
use alexnet_model::preprocess::Preprocessing;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    weights: WeightArgs,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// An image folder with one sub-folder per class (WordNet ids or label names), a CIFAR
    /// binary folder (its test split), or with --dataset the subset's data folder [default
    /// with --dataset: its folder in the cache, where alexnet-train --download puts it].
    #[arg(long, visible_alias = "data-dir", required_unless_present = "dataset")]
    data: Option<PathBuf>,
    /// imagenette, imagewoof or tiny-imagenet: score its validation split, with a 1000-class
    /// model against ImageNet's classes, with a model trained on the subset against its own.
    #[arg(long, value_enum)]
    dataset: Option<Subset>,
    /// With --dataset imagenette or imagewoof: which download, 160 or 320 (shorter side in
    /// pixels) or full [default: 320].
    #[arg(long, value_enum, requires = "dataset")]
    size: Option<ImageSize>,
    /// With --dataset: fetch it into its data folder first when it is not there (the
    /// published archive, MD5-checked, unpacked, deleted; `$ALEXNET_BURN_MIRROR=URL` fetches
    /// from `URL/<archive name>`).
    #[arg(long, requires = "dataset")]
    download: bool,
    #[command(flatten)]
    report: ReportArgs,
}

/// Where an example's image comes from.
enum Example {
    File(PathBuf),
    Cifar(cifar::CifarImage),
}

impl Example {
    fn image(&self, preprocessing: &Preprocessing, strict: bool) -> Result<RgbImage> {
        match self {
            Example::File(path) => load_image(path, preprocessing, strict),
            Example::Cifar(image) => Ok(image.to_rgb()),
        }
    }
}

#[derive(Debug, Serialize)]
struct ClassAccuracy {
    index: usize,
    label: String,
    n: usize,
    top1: f64,
}

#[derive(Debug, Serialize)]
struct EvalReport {
    n: usize,
    top1: f64,
    top5: f64,
    failed: usize,
    per_class: Vec<ClassAccuracy>,
}

/// Lists `(example, class)` pairs of the dataset at `dir`.
fn examples(dir: &Path, labels: Option<&Labels>) -> Result<Vec<(Example, usize)>> {
    if !dir.is_dir() {
        bail!("{}: no such dataset folder", dir.display());
    }
    if let Some(kind) = CifarKind::detect(dir) {
        let images = cifar::read_files(&kind.split_files(dir, false), kind)?;
        return Ok(images
            .into_iter()
            .map(|i| {
                let label = i.label;
                (Example::Cifar(i), label)
            })
            .collect());
    }
    let classes = class_folders(dir)?;
    if classes.is_empty() {
        bail!(
            "{}: neither a CIFAR binary folder nor an image folder with a sub-folder per class",
            dir.display()
        );
    }
    let mut out = Vec::new();
    for (position, (name, class_dir)) in classes.iter().enumerate() {
        let index = match labels {
            Some(labels) => labels.index_of(name).with_context(|| {
                format!(
                    "class folder `{name}` is neither a WordNet id nor a label of the labels file"
                )
            })?,
            None => position,
        };
        let files = image_files(class_dir)?;
        out.extend(files.into_iter().map(|f| (Example::File(f), index)));
    }
    Ok(out)
}

/// The `(example, class)` pairs of a subset's validation split, the classes numbered as in
/// `labels` (ImageNet's for a 1000-class model, else the subset's own).
fn subset_examples(folder: &SubsetFolder, labels: &Labels) -> Result<Vec<(Example, usize)>> {
    let targets = folder
        .wnids
        .iter()
        .map(|wnid| {
            labels.index_of(wnid).with_context(|| {
                format!(
                    "class {wnid} of {} is not among the model's labels",
                    folder.subset
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(folder
        .images(false)?
        .into_iter()
        .map(|(path, class)| (Example::File(path), targets[class]))
        .collect())
}

/// The labels a subset is scored with: `--labels`, ImageNet's for 1000 classes, or the
/// subset's own for a model with its class count.
fn subset_labels(
    folder: &SubsetFolder,
    path: Option<&PathBuf>,
    num_classes: usize,
) -> Result<Labels> {
    match labels_for(path, num_classes)? {
        Some(labels) => Ok(labels),
        None if num_classes == folder.num_classes() => Ok(folder.labels()),
        None => bail!(
            "the model has {num_classes} classes; {} is scored with 1000-class ImageNet models \
             or {}-class models trained on it (or give --labels)",
            folder.subset,
            folder.num_classes()
        ),
    }
}

struct Eval<'a> {
    args: &'a EvalArgs,
    /// The dataset folder (`--data`, or the subset's).
    data: PathBuf,
    /// The subset, with `--dataset`.
    subset: Option<SubsetFolder>,
}

impl BackendJob for Eval<'_> {
    type Output = EvalReport;

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<EvalReport> {
        let args = self.args;
        let model = args.weights.load::<B>(&device)?;
        let config = model.config().clone();
        let (labels, examples) = match &self.subset {
            Some(folder) => {
                let labels =
                    subset_labels(folder, args.report.labels.as_ref(), config.num_classes)?;
                let examples = subset_examples(folder, &labels)?;
                (Some(labels), examples)
            }
            None => {
                let cifar_meta = self.data.join(CifarKind::Cifar10.label_names_file());
                let labels_path = args
                    .report
                    .labels
                    .clone()
                    .or_else(|| cifar_meta.is_file().then_some(cifar_meta));
                let labels = labels_for(labels_path.as_ref(), config.num_classes)?;
                let examples = examples(&self.data, labels.as_ref())?;
                (labels, examples)
            }
        };
        if examples.is_empty() {
            bail!("{}: no images found", self.data.display());
        }
        if let Some((_, class)) = examples.iter().find(|(_, c)| *c >= config.num_classes) {
            bail!(
                "the data has class {class}, the model only {} classes",
                config.num_classes
            );
        }
        let preprocessing = args
            .preprocess
            .apply(args.weights.default_preprocessing(&config))?;
        let views_per_image = args.report.views_per_image();
        let batch_size = args.report.batch()?;
        check_batch_memory(&config, &preprocessing, batch_size, views_per_image)?;
        let strict = args.preprocess.strict_images;
        let classes = config.num_classes;
        let (mut seen, mut correct) = (vec![0usize; classes], vec![0usize; classes]);
        let (mut top5, mut failed) = (0usize, 0usize);
        let bar = progress(examples.len(), "evaluating");
        for batch in examples.chunks(batch_size) {
            let prepared = prepare_with(
                batch,
                |(e, _)| e.image(&preprocessing, strict),
                &preprocessing,
                args.report.ten_crop,
            );
            let (kept, views, batch_failed) = keep_readable(batch, prepared, &bar);
            failed += batch_failed;
            let targets: Vec<usize> = kept.iter().map(|(_, class)| *class).collect();
            if !targets.is_empty() {
                let probs = probabilities(&model, &views, views_per_image, &device)?;
                for (row, &target) in probs.iter().zip(&targets) {
                    let better = row.iter().filter(|&&p| p > row[target]).count();
                    seen[target] += 1;
                    correct[target] += usize::from(better == 0);
                    top5 += usize::from(better < 5);
                }
            }
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
        let n: usize = seen.iter().sum();
        if n == 0 {
            bail!("none of the {failed} images could be read");
        }
        let per_class = (0..classes)
            .filter(|&c| seen[c] > 0)
            .map(|c| ClassAccuracy {
                index: c,
                label: labels
                    .as_ref()
                    .map_or_else(|| format!("class {c}"), |l| l.name(c)),
                n: seen[c],
                top1: correct[c] as f64 / seen[c] as f64,
            })
            .collect();
        Ok(EvalReport {
            n,
            top1: correct.iter().sum::<usize>() as f64 / n as f64,
            top5: top5 as f64 / n as f64,
            failed,
            per_class,
        })
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let (data, subset) = match args.dataset {
        Some(subset) => {
            let size = subset.size(args.size)?;
            let dir = subset.data_dir(size, args.data.as_deref())?;
            if args.download {
                subset.archive(size).ensure(&dir, None, true)?;
            }
            let folder = SubsetFolder::open(subset, size, &dir)?;
            (dir, Some(folder))
        }
        None => (args.data.clone().context("--data is required")?, None),
    };
    let report = dispatch(args.weights.backend()?, Eval { args, data, subset })?;
    match args.report.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => {
            println!(
                "n: {}  top-1: {:.4}  top-5: {:.4}",
                report.n, report.top1, report.top5
            );
            println!("{:>5}  {:<30} {:>6} {:>8}", "class", "label", "n", "top-1");
            for c in &report.per_class {
                // Labels come from folder names or a labels file: control characters escaped.
                let label = escape_control(&c.label);
                println!("{:>5}  {:<30} {:>6} {:>8.4}", c.index, label, c.n, c.top1);
            }
        }
    }
    if report.failed > 0 {
        bail!("{} images could not be read (not counted)", report.failed);
    }
    Ok(())
}

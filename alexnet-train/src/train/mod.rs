//! Training: a hand-written epoch loop over Burn's `Autodiff<B>` (see [`fit`] for why not
//! burn-train's `Learner`), run folders, checkpoints and resumption.
//!
//! A run folder `artifacts/<run>/` holds:
//! * `config.json` — every option ([`TrainConfig`]) and what was derived from it (backend,
//!   transform, network configuration, classes, data);
//! * `metrics.csv` — one row per epoch ([`metrics::CSV_HEADER`]);
//! * `checkpoints/` — the newest epochs' model, optimizer and schedule ([`checkpoint`]);
//! * `model.safetensors` / `model.bpk` (Burnpack) — the final model;
//!   `model-best.safetensors` — the epoch with the best validation top-1;
//! * `summary.json` — final and best scores, epochs, wall time, images/s;
//! * `curves.png`, `confusion.png` — loss/accuracy curves and the final confusion matrix.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod export;
pub mod fit;
pub mod metrics;
pub mod parallel;
pub mod plot;
pub mod schedule;
pub mod sgd;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::data::folder::{image_folder, subset_folder};
use crate::data::rng::{mix, Rng};
use crate::data::source::{cifar_folder, cifar_sample, ImageSource, Splits};
use alexnet_common::backend::{dispatch, BackendKind};
use alexnet_common::datasets::subsets::SubsetFolder;
use alexnet_model::files::{read_text_file, MAX_TEXT_BYTES};
use alexnet_model::memory::check_batch;
pub use config::TrainConfig;
pub use metrics::{EpochMetrics, Summary};

/// Options of one invocation that are not part of the run's configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop (as if interrupted) after this epoch; `--resume` continues.
    pub stop_after: Option<usize>,
    /// No progress bar or per-epoch lines.
    pub quiet: bool,
}

/// What a finished invocation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Every epoch so far.
    pub history: Vec<EpochMetrics>,
    /// `summary.json`'s content, when the run is complete (not stopped by `stop_after`).
    pub summary: Option<Summary>,
}

/// A subset of another source (`--max-train`, `--max-val`).
struct Subset {
    inner: Arc<dyn ImageSource>,
    ids: Vec<usize>,
}

impl ImageSource for Subset {
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn label(&self, i: usize) -> usize {
        self.inner.label(self.ids[i])
    }
    fn image(&self, i: usize) -> Result<image::RgbImage> {
        self.inner.image(self.ids[i])
    }
}

fn limit(
    source: Arc<dyn ImageSource>,
    max: Option<usize>,
    seed: u64,
    stream: u64,
) -> Arc<dyn ImageSource> {
    match max {
        Some(max) if max < source.len() => {
            let mut ids: Vec<usize> = (0..source.len()).collect();
            Rng::new(mix(seed, stream, 0)).shuffle(&mut ids);
            ids.truncate(max);
            ids.sort_unstable();
            Arc::new(Subset { inner: source, ids })
        }
        _ => source,
    }
}

/// Loads the dataset a configuration names (and applies `max_train` / `max_val`).
pub fn load_data(config: &TrainConfig) -> Result<Splits> {
    let mut splits = match (config.dataset.subset(), config.dataset.cifar_kind()) {
        (Some(subset), _) => {
            let (size, dir) = config.subset_source(subset)?;
            subset_folder(&SubsetFolder::open(subset, size, &dir)?)?
        }
        (None, Some(kind)) => match &config.data_dir {
            Some(dir) => cifar_folder(dir, kind)?,
            None => cifar_sample()?,
        },
        (None, None) => match &config.data_dir {
            Some(dir) => image_folder(dir, config.val_split.unwrap_or(0.0), config.seed)?,
            None => bail!("--dataset folder needs --data-dir"),
        },
    };
    if splits.train.is_empty() || splits.val.is_empty() {
        bail!("{}: empty training or validation split", splits.description);
    }
    splits.train = limit(splits.train, config.max_train, config.seed, 0x7A1);
    splits.val = limit(splits.val, config.max_val, config.seed, 0x7A2);
    Ok(splits)
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A new run folder under `config.out_dir` (never an existing one).
pub fn new_run_dir(config: &TrainConfig) -> Result<PathBuf> {
    let base = match &config.run_name {
        Some(name) => name.clone(),
        None => format!(
            "{}-{}-{}",
            config.dataset,
            config.variant.name(),
            utc_stamp()
        ),
    };
    let mut dir = config.out_dir.join(&base);
    if config.run_name.is_some() && dir.exists() {
        bail!(
            "{}: run folder exists (use --resume {} to continue it, or another --run-name)",
            dir.display(),
            dir.display()
        );
    }
    let mut n = 2;
    while dir.exists() {
        dir = config.out_dir.join(format!("{base}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Reads the configuration of an existing run folder.
pub fn run_config(run_dir: &Path) -> Result<String> {
    let path = run_dir.join("config.json");
    if !run_dir.is_dir() {
        bail!("{}: no such run folder", run_dir.display());
    }
    // A regular file within the text limit (a FIFO or device is refused, never read).
    read_text_file(&path, MAX_TEXT_BYTES).with_context(|| {
        format!(
            "{}: not a run folder (no readable config.json)",
            run_dir.display()
        )
    })
}

/// `--batch-size` and `--crop` against a training step's memory estimate
/// ([`alexnet_model::memory`]): one line naming the flag, its value and the limit, before
/// anything is allocated (and, from the command line, before the run folder is made).
pub fn check_batch_memory(
    config: &TrainConfig,
    model: &alexnet_model::AlexNetConfig,
) -> Result<()> {
    let crop = config.transform()?.crop;
    Ok(check_batch(model, crop, "--crop", config.batch_size, true)?)
}

/// The backend a configuration names.
pub fn backend_kind(config: &TrainConfig) -> Result<BackendKind> {
    match config.backend {
        Some(kind) => kind.ensure_compiled(),
        None => BackendKind::default_kind(),
    }
}

/// Trains: a new run in `run_dir` (which must exist), or continues it when `resume`.
pub fn run(
    config: &TrainConfig,
    data: &Splits,
    run_dir: &Path,
    resume: bool,
    options: &RunOptions,
) -> Result<Outcome> {
    config.validate()?;
    let kind = backend_kind(config)?;
    let transform = config.transform()?;
    let model_config = config.model_config(data.num_classes(), kind.max_param_bytes())?;
    check_batch_memory(config, &model_config)?;
    let resolved = json!({
        "backend": kind.name(),
        "transform": transform,
        "model": model_config,
        "classes": data.classes,
        "data": data.description,
        "train_images": data.train.len(),
        "val_images": data.val.len(),
    });
    let config_json = serde_json::to_vec_pretty(&json!({"config": config, "resolved": resolved}))?;
    metrics::write_atomic(&run_dir.join("config.json"), &config_json)?;
    let job = fit::FitJob {
        config,
        data,
        transform,
        model_config,
        run_dir,
        resume,
        options,
        backend: kind,
    };
    dispatch(kind, job)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without `--run-name` a run folder is `<dataset>-<variant>-<UTC time>`, with the
    /// command-line names.
    #[test]
    fn default_run_folder_names() {
        let out_dir = std::env::temp_dir().join(format!("alexnet-runs-{}", std::process::id()));
        let config = TrainConfig {
            out_dir: out_dir.clone(),
            dataset: config::Dataset::Cifar100Coarse,
            variant: alexnet_model::Variant::Torchvision,
            ..TrainConfig::default()
        };
        let dir = new_run_dir(&config).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::remove_dir_all(&out_dir).unwrap();
        assert!(name.starts_with("cifar100-coarse-torchvision-20"), "{name}");
        assert_eq!(
            name.len(),
            "cifar100-coarse-torchvision-".len() + 15,
            "{name}"
        );
    }
}

//! Per-epoch checkpoints under `RUN/checkpoints/`: everything a resumed run needs to continue
//! exactly as if it had not stopped.
//!
//! * `epoch-NNNN-model.mpk` — the model (Burn's `NamedMpkFileRecorder`, full precision;
//!   parameter ids included, which key the optimizer state);
//! * `epoch-NNNN-optim.mpk` — the SGD momentum buffers (same recorder);
//! * `epoch-NNNN-state.json` — epoch, scheduler, early-stopping counters and the metrics so
//!   far; written last, so its presence marks a complete checkpoint.
//!
//! Random state needs no saving: every random draw is derived from the seed and the epoch.

use std::path::{Path, PathBuf};

use alexnet_model::AlexNet;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::metrics::{write_atomic, EpochMetrics};
use super::schedule::Scheduler;

/// The recorder of the per-epoch model and optimizer checkpoints.
pub type CheckpointRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Early stopping on the validation loss.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// Best validation loss so far.
    pub best_loss: Option<f64>,
    /// Epochs since it improved.
    pub bad_epochs: usize,
}

impl EarlyStop {
    /// Records an epoch's validation loss; true when `patience` epochs passed without
    /// improvement.
    pub fn update(&mut self, val_loss: f64, patience: Option<usize>) -> bool {
        if self.best_loss.is_none_or(|best| val_loss < best) {
            self.best_loss = Some(val_loss);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        patience.is_some_and(|p| self.bad_epochs >= p)
    }
}

/// The non-tensor state of a run after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Last completed epoch.
    pub epoch: usize,
    /// The learning-rate schedule.
    pub scheduler: Scheduler,
    /// Early-stopping counters.
    pub early_stop: EarlyStop,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Every epoch's metrics.
    pub history: Vec<EpochMetrics>,
}

fn file(dir: &Path, epoch: usize, part: &str) -> PathBuf {
    // No dot in the stem: the recorder sets the extension itself.
    dir.join(format!("epoch-{epoch:04}-{part}"))
}

/// Saves the checkpoint of `state.epoch` and removes all but the newest `keep` (0: keep all).
pub fn save<B, O>(
    dir: &Path,
    model: &AlexNet<B>,
    optim: &O,
    state: &TrainState,
    keep: usize,
) -> Result<()>
where
    B: AutodiffBackend,
    O: Optimizer<AlexNet<B>, B>,
{
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let recorder = CheckpointRecorder::new();
    let epoch = state.epoch;
    model
        .clone()
        .save_file(file(dir, epoch, "model"), &recorder)
        .with_context(|| format!("cannot save the model checkpoint in {}", dir.display()))?;
    Recorder::<B>::record(&recorder, optim.to_record(), file(dir, epoch, "optim"))
        .with_context(|| format!("cannot save the optimizer checkpoint in {}", dir.display()))?;
    let json = serde_json::to_vec_pretty(state)?;
    write_atomic(&file(dir, epoch, "state").with_extension("json"), &json)?;
    if keep > 0 {
        let epochs = complete_epochs(dir)?;
        for old in epochs.iter().rev().skip(keep) {
            for part in ["state.json", "model.mpk", "optim.mpk"] {
                let _ = std::fs::remove_file(dir.join(format!("epoch-{old:04}-{part}")));
            }
        }
    }
    Ok(())
}

/// Epochs with a complete checkpoint in `dir`, ascending.
pub fn complete_epochs(dir: &Path) -> Result<Vec<usize>> {
    let mut epochs = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(epochs);
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("epoch-")
            .and_then(|r| r.strip_suffix("-state.json"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            epochs.push(n);
        }
    }
    epochs.sort_unstable();
    Ok(epochs)
}

/// Loads the checkpoint of `epoch` into a freshly built `model` and `optim`.
pub fn load<B, O>(
    dir: &Path,
    epoch: usize,
    model: AlexNet<B>,
    optim: O,
    device: &B::Device,
) -> Result<(AlexNet<B>, O, TrainState)>
where
    B: AutodiffBackend,
    O: Optimizer<AlexNet<B>, B>,
{
    let recorder = CheckpointRecorder::new();
    let state_path = file(dir, epoch, "state").with_extension("json");
    let text = std::fs::read_to_string(&state_path)
        .with_context(|| format!("cannot read {}", state_path.display()))?;
    let state: TrainState = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a training state", state_path.display()))?;
    let model_path = file(dir, epoch, "model");
    let model = model
        .load_file(model_path.clone(), &recorder, device)
        .with_context(|| {
            format!(
                "{}.mpk: cannot load the model checkpoint (written by a different configuration?)",
                model_path.display()
            )
        })?;
    let optim_path = file(dir, epoch, "optim");
    let record = Recorder::<B>::load(&recorder, optim_path.clone(), device).with_context(|| {
        format!(
            "{}.mpk: cannot load the optimizer checkpoint",
            optim_path.display()
        )
    })?;
    Ok((model, optim.load_record(record), state))
}

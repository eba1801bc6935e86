//! Per-epoch checkpoints under `RUN/checkpoints/`: everything a resumed run needs to continue
//! exactly as if it had not stopped.
//!
//! * `epoch-NNNN-model.mpk` — the model (Burn's `NamedMpkFileRecorder`, full precision;
//!   parameter ids included, which key the optimizer state);
//! * `epoch-NNNN-optim.mpk` — the SGD momentum buffers (same recorder);
//! * `epoch-NNNN-state.json` — epoch, scheduler, early-stopping counters and the metrics so
//!   far; written last, so its presence marks a complete checkpoint.
//!
//! Each file is written under a hidden temporary name (`.epoch-NNNN-….partial` / `….tmp`)
//! and renamed into place, so a run killed mid-write never leaves a half-written checkpoint
//! under a real name. A checkpoint that is damaged anyway (disk trouble, a copy cut short) is
//! skipped on `--resume` with a warning: [`load_newest`] continues from the newest one that
//! loads.
//!
//! Random state needs no saving: every random draw is derived from the seed and the epoch.

use std::panic::{catch_unwind, set_hook, take_hook, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use alexnet_model::AlexNet;
use anyhow::{anyhow, bail, Context, Result};
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

/// The temporary stem a recorder writes `part` to (it replaces `.partial` by `.mpk`).
fn partial(dir: &Path, epoch: usize, part: &str) -> PathBuf {
    dir.join(format!(".epoch-{epoch:04}-{part}.partial"))
}

/// Flushes the recorder's file written at stem `tmp` to disk and renames it to `stem`.mpk.
fn publish(tmp: &Path, stem: &Path) -> Result<()> {
    let (from, to) = (tmp.with_extension("mpk"), stem.with_extension("mpk"));
    let context = || format!("cannot write {}", to.display());
    std::fs::File::open(&from)
        .and_then(|f| f.sync_all())
        .with_context(context)?;
    std::fs::rename(&from, &to).with_context(context)
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
    let model_tmp = partial(dir, epoch, "model");
    model
        .clone()
        .save_file(model_tmp.clone(), &recorder)
        .with_context(|| format!("cannot save the model checkpoint in {}", dir.display()))?;
    publish(&model_tmp, &file(dir, epoch, "model"))?;
    let optim_tmp = partial(dir, epoch, "optim");
    Recorder::<B>::record(&recorder, optim.to_record(), optim_tmp.clone())
        .with_context(|| format!("cannot save the optimizer checkpoint in {}", dir.display()))?;
    publish(&optim_tmp, &file(dir, epoch, "optim"))?;
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

/// Loads the newest checkpoint in `dir` that loads into a copy of `model` and a fresh
/// optimizer from `optim`. A damaged one is skipped, newest first, with one line through
/// `warn` naming its file and why; the error names the newest when none loads.
pub fn load_newest<B, O>(
    dir: &Path,
    model: &AlexNet<B>,
    optim: impl Fn() -> O,
    device: &B::Device,
    mut warn: impl FnMut(String),
) -> Result<(AlexNet<B>, O, TrainState)>
where
    B: AutodiffBackend,
    O: Optimizer<AlexNet<B>, B>,
{
    let epochs = complete_epochs(dir)?;
    let Some(&newest) = epochs.last() else {
        bail!("{}: no checkpoint to resume from", dir.display());
    };
    let mut first_error = None;
    for (i, &epoch) in epochs.iter().rev().enumerate() {
        match load(dir, epoch, model.clone(), optim(), device) {
            Ok(loaded) => return Ok(loaded),
            Err(err) => {
                let older = epochs.len() - 1 - i;
                let next = match older {
                    0 => "no older checkpoint is left".to_string(),
                    _ => format!("trying epoch {}", epochs[older - 1]),
                };
                warn(format!(
                    "warning: skipping the checkpoint of epoch {epoch}: {}; {next}",
                    one_line(&err)
                ));
                first_error.get_or_insert(err);
            }
        }
    }
    let err = first_error.expect("at least one checkpoint failed");
    bail!(
        "{}: no checkpoint loads (the newest, epoch {newest}: {})",
        dir.display(),
        one_line(&err)
    )
}

fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

/// A recorder's error in a few words: Burn's messages carry a multi-line note on old record
/// formats after the cause (`Unknown("InvalidDataRead(…)\nThe internal data format …")`).
fn recorder_error(err: burn::record::RecorderError) -> anyhow::Error {
    let text = err.to_string();
    let cause = text.split('\n').next().unwrap_or_default();
    let cause = cause.split("\\n").next().unwrap_or_default();
    let cause = match cause.strip_prefix("Unknown(\"") {
        Some(inner) => inner.strip_suffix("\")").unwrap_or(inner),
        None => cause,
    };
    anyhow!("{}", cause.trim())
}

/// Runs `f`, turning a panic into an error carrying its message (Burn's recorders panic on
/// some malformed records, e.g. a tensor of the wrong shape); no panic is printed.
fn without_panics<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let message = Arc::new(Mutex::new(None::<String>));
    let sink = message.clone();
    let hook = take_hook();
    set_hook(Box::new(move |info| {
        let mut first = sink.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| info.payload_as_str().unwrap_or("a panic").to_string());
    }));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    set_hook(hook);
    outcome.unwrap_or_else(|_| {
        let text = message.lock().unwrap_or_else(|e| e.into_inner()).take();
        let text = text.unwrap_or_else(|| "the reader failed".into());
        Err(anyhow!("{}", text.lines().next().unwrap_or_default()))
    })
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
    if state.epoch != epoch {
        bail!(
            "{}: holds epoch {}, not {epoch}",
            state_path.display(),
            state.epoch
        );
    }
    let model_path = file(dir, epoch, "model");
    let model = without_panics(|| {
        model
            .load_file(model_path.clone(), &recorder, device)
            .map_err(recorder_error)
    })
        .with_context(|| {
            format!(
                "{}.mpk: cannot load the model checkpoint (damaged, or written by a different configuration?)",
                model_path.display()
            )
        })?;
    let optim_path = file(dir, epoch, "optim");
    let optim = without_panics(|| {
        let record =
            Recorder::<B>::load(&recorder, optim_path.clone(), device).map_err(recorder_error)?;
        Ok(optim.load_record(record))
    })
    .with_context(|| {
        format!(
            "{}.mpk: cannot load the optimizer checkpoint",
            optim_path.display()
        )
    })?;
    Ok((model, optim, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::record::RecorderError;

    #[test]
    fn recorder_errors_are_short() {
        let long = RecorderError::Unknown(
            "InvalidDataRead(Kind(UnexpectedEof))\nThe internal data format has changed".into(),
        );
        assert_eq!(
            recorder_error(long).to_string(),
            "InvalidDataRead(Kind(UnexpectedEof))"
        );
        let short = RecorderError::FileNotFound("x.mpk".into());
        assert!(recorder_error(short).to_string().contains("x.mpk"));
    }

    #[test]
    fn panics_become_errors() {
        let err = without_panics::<()>(|| panic!("shape mismatch\nmore")).unwrap_err();
        assert_eq!(err.to_string(), "shape mismatch");
        assert_eq!(without_panics(|| Ok(3)).unwrap(), 3);
    }
}

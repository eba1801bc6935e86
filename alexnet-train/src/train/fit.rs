//! The training loop.
//!
//! **Why not burn-train's `Learner`.** Burn 0.21's `Learner` (`burn-train/src/learner`) would
//! give checkpointing, metrics and a TUI, but this project needs things it does not offer or
//! makes awkward: (1) a reduce-on-plateau schedule driven by the *validation* loss — Burn's
//! `LrScheduler::step()` is called once per iteration with no access to metrics; (2) exact
//! resumption — the `Learner` restores model, optimizer and scheduler but not the data
//! order/augmentation streams, so a resumed run would see different batches; (3) `metrics.csv`
//! and `summary.json` in a fixed format, and per-epoch images/s; (4) a model whose forward pass
//! has a `try_forward` (bad input is an error, not a panic). A plain loop over `Autodiff<B>`
//! (`fit`: set up or resume, then per epoch train, validate and close the epoch, then
//! finish) with Burn's own SGD, recorders and loss does all of this, and avoids compiling
//! burn-train (with its TUI and system-metrics crates) on every backend.
//!
//! Determinism: initialisation is seeded from `--seed`; each epoch re-seeds the backend
//! generator (dropout) from `(seed, epoch)`; the data order and each image's augmentation come
//! from `(seed, epoch[, image])` ([`crate::data::loader`]). So a run resumed from the
//! checkpoint of epoch `k` computes epoch `k + 1` exactly as the uninterrupted run does (on
//! the same backend and thread count).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use alexnet_model::{AlexNet, AlexNetAutodiffBackend, AlexNetBackend, AlexNetConfig};
use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::Optimizer;
use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::{self, EarlyStop, TrainState};
use super::metrics::{self, EpochMetrics, Summary, Tally};
use super::parallel::{batch_gradients, batch_tensors, host_logits};
use super::schedule::Scheduler;
use super::sgd::FusedSgd;
use super::{export, plot, Outcome, RunOptions, TrainConfig};
use crate::data::augment::Transform;
use crate::data::loader::{batches, epoch_order, LoaderConfig};
use crate::data::rng::mix;
use crate::data::source::{ImageSource, Splits};
use alexnet_common::backend::{check_device, device_by_index, BackendJob, BackendKind};

/// Stream tags for [`mix`].
const INIT_STREAM: u64 = 0x1417;
const DROPOUT_STREAM: u64 = 0xD80F;

/// One training invocation, run on the chosen backend by [`alexnet_common::backend::dispatch`].
pub struct FitJob<'a> {
    pub(super) config: &'a TrainConfig,
    pub(super) data: &'a Splits,
    pub(super) transform: Transform,
    pub(super) model_config: AlexNetConfig,
    pub(super) run_dir: &'a Path,
    pub(super) resume: bool,
    pub(super) options: &'a RunOptions,
    pub(super) backend: BackendKind,
}

impl BackendJob for FitJob<'_> {
    type Output = Outcome;

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<Outcome> {
        let devices = match &self.config.devices {
            Some(indices) => {
                let mut devices = Vec::with_capacity(indices.len());
                for &i in indices {
                    let device = device_by_index::<B>(i);
                    // A missing device panics on first use: one line instead.
                    if !self.backend.is_cpu() {
                        check_device::<B>(self.backend, &device, Some(i))?;
                    }
                    devices.push(device);
                }
                devices
            }
            None => vec![device],
        };
        fit::<Autodiff<B>>(self, devices)
    }
}

/// Mean cross-entropy of each row, on the host (validation).
fn row_losses(logits: &[f32], labels: &[usize]) -> f64 {
    let classes = logits.len() / labels.len().max(1);
    logits
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max
                + row
                    .iter()
                    .map(|&v| (v as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            lse - row[label] as f64
        })
        .sum::<f64>()
        / labels.len().max(1) as f64
}

/// Validation pass: loss, top-1, top-5, and the confusion counts `[truth][guess]`.
pub fn evaluate<B: AlexNetBackend>(
    model: &AlexNet<B>,
    source: Arc<dyn ImageSource>,
    transform: Arc<Transform>,
    loader: &LoaderConfig,
    device: &B::Device,
) -> Result<(Tally, Vec<Vec<usize>>)> {
    let classes = model.config().num_classes;
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut tally = Tally::default();
    let order = (0..source.len()).collect();
    for batch in batches(source, order, transform, loader, false, 0) {
        let batch = batch?;
        let labels = &batch.labels;
        let (x, _) = batch_tensors::<B>(&batch, 0..batch.len(), device);
        let logits = host_logits(model.try_forward(x)?)?;
        tally.add(row_losses(&logits, labels), &logits, labels);
        for (row, &label) in logits.chunks_exact(classes).zip(labels) {
            let guess = (0..classes)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            confusion[label][guess] += 1;
        }
    }
    Ok((tally, confusion))
}

fn progress(options: &RunOptions, len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if options.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} batches {msg} ({elapsed} < {eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Trains on `devices` (the first is the main device; more than one: data-parallel): set up
/// or resume, then per epoch train, validate and close the epoch, then finish the run.
fn fit<B: AlexNetAutodiffBackend>(job: FitJob<'_>, devices: Vec<B::Device>) -> Result<Outcome> {
    let (mut run, mut model) = Run::<B>::start(job, devices)?;
    let mut confusion = None;
    while let Some(epoch) = run.next_epoch() {
        let started = Instant::now();
        let (trained, tally, lr) = run.train_epoch(model, epoch)?;
        model = trained;
        let train_seconds = started.elapsed().as_secs_f64();
        let (val, matrix) = run.validate(&model)?;
        confusion = Some(matrix);
        let row = EpochMetrics {
            epoch,
            train_loss: tally.loss(),
            train_top1: tally.top1(),
            train_top5: tally.top5(),
            val_loss: val.loss(),
            val_top1: val.top1(),
            val_top5: val.top5(),
            lr,
            seconds: started.elapsed().as_secs_f64(),
            train_seconds,
            train_images: tally.count,
        };
        run.end_epoch(&model, row)?;
    }
    run.finish(&model, confusion)
}

/// A run in progress: the optimizer and the state a checkpoint holds, with what every epoch
/// needs. The model itself is passed through [`fit`]'s loop by value, so that each optimizer
/// step owns the parameters it updates.
struct Run<'a, B: AlexNetAutodiffBackend> {
    config: &'a TrainConfig,
    data: &'a Splits,
    run_dir: &'a Path,
    options: &'a RunOptions,
    backend: BackendKind,
    devices: Vec<B::Device>,
    optim: Sgd<B>,
    state: TrainState,
    parameters: usize,
    loader: LoaderConfig,
    transform: Arc<Transform>,
}

/// SGD over the model's parameters.
pub type Sgd<B> = OptimizerAdaptor<FusedSgd, AlexNet<B>, B>;

/// SGD with `config`'s momentum (dampening 0, as PyTorch and the paper) and weight decay.
pub fn sgd<B: AlexNetAutodiffBackend>(config: &TrainConfig) -> Sgd<B> {
    OptimizerAdaptor::from(FusedSgd::new(config.momentum, config.weight_decay))
}

impl<'a, B: AlexNetAutodiffBackend> Run<'a, B> {
    /// Builds the model and the optimizer, then continues from the newest checkpoint
    /// (`--resume`) or loads `--weights`.
    fn start(job: FitJob<'a>, devices: Vec<B::Device>) -> Result<(Self, AlexNet<B>)> {
        let (config, data, run_dir, options) = (job.config, job.data, job.run_dir, job.options);
        let (transform, model_config) = (job.transform, job.model_config);
        let device = devices[0].clone();
        B::seed(&device, mix(config.seed, INIT_STREAM, 0));
        let mut model: AlexNet<B> = model_config.try_init(&device)?;
        if config.freeze_features {
            // Before any loading: a checkpoint or weights file keeps the target's
            // require-grad flags.
            model = model.freeze_features();
        }
        model.check_input([1, 3, transform.crop, transform.crop])?;
        let parameters = model.num_params(); // also runs the (lazy) initialisation now
        let mut optim = sgd(config);
        let say = |line: String| say(options, line);

        let ckpt_dir = run_dir.join("checkpoints");
        let mut state = if job.resume {
            // A damaged newest checkpoint is skipped with a warning (printed even with
            // --quiet), falling back to the newest one that loads.
            let (m, o, s) = checkpoint::load_newest(
                &ckpt_dir,
                &model,
                || sgd(config),
                &device,
                |line| eprintln!("{line}"),
            )?;
            model = m;
            optim = o;
            say(format!(
                "resuming {} after epoch {}",
                run_dir.display(),
                s.epoch
            ));
            s
        } else {
            if let Some(path) = &config.initial_weights()? {
                let (m, replaced) = export::load_initial(model, path, config.strict_weights)?;
                model = m;
                if replaced {
                    say(format!(
                        "{}: fc8 re-initialised for {} classes",
                        path.display(),
                        data.num_classes()
                    ));
                }
            }
            TrainState {
                epoch: 0,
                scheduler: Scheduler::new(config.schedule()?, config.lr, config.epochs),
                early_stop: EarlyStop::default(),
                stopped_early: false,
                history: Vec::new(),
            }
        };
        // `--epochs` may grow on resume; cosine then spans the new total.
        state.scheduler.epochs = config.epochs;

        say(format!(
            "{}: {} training / {} validation images, {} classes; {} variant, {} parameters{}; backend {} on {:?}; batch {}",
            data.description,
            data.train.len(),
            data.val.len(),
            data.num_classes(),
            model_config.variant.name(),
            parameters,
            if config.freeze_features { " (conv1..conv5 frozen)" } else { "" },
            job.backend,
            devices,
            config.batch_size
        ));
        let loader = LoaderConfig {
            batch_size: config.batch_size,
            workers: config.workers,
            prefetch: 2,
            seed: config.seed,
        };
        let run = Run {
            config,
            data,
            run_dir,
            options,
            backend: job.backend,
            devices,
            optim,
            state,
            parameters,
            loader,
            transform: Arc::new(transform),
        };
        Ok((run, model))
    }
}

impl<B: AlexNetAutodiffBackend> Run<'_, B> {
    /// The next epoch to train, unless the run is over or `--stop-after` says stop.
    fn next_epoch(&self) -> Option<usize> {
        let epoch = self.state.epoch + 1;
        let over = epoch > self.config.epochs || self.state.stopped_early;
        let stop = self.options.stop_after.is_some_and(|s| epoch > s);
        (!over && !stop).then_some(epoch)
    }

    /// One pass over the training set: the trained model, its loss and accuracy on the way,
    /// and the learning rate used.
    fn train_epoch(
        &mut self,
        mut model: AlexNet<B>,
        epoch: usize,
    ) -> Result<(AlexNet<B>, Tally, f64)> {
        let config = self.config;
        let lr = self.state.scheduler.lr_for(epoch);
        for (k, d) in self.devices.iter().enumerate() {
            B::seed(d, mix(config.seed, DROPOUT_STREAM + k as u64, epoch as u64));
        }
        let order = epoch_order(self.data.train.len(), config.seed, epoch);
        let pass = batches(
            self.data.train.clone(),
            order,
            self.transform.clone(),
            &self.loader,
            true,
            epoch,
        );
        let bar = progress(self.options, pass.num_batches(), epoch, config.epochs);
        let mut tally = Tally::default();
        for (b, batch) in pass.enumerate() {
            let batch = batch?;
            let step = batch_gradients(&model, &batch, &self.devices)?;
            let value = step.loss;
            if !value.is_finite() {
                bar.finish_and_clear();
                bail!(
                    "training diverged at epoch {epoch}, batch {} (loss {value}); try a lower --lr",
                    b + 1
                );
            }
            tally.add(value, &step.logits, &batch.labels);
            model = self.optim.step(lr, model, step.grads);
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} top-1 {:.1}%",
                tally.loss(),
                100.0 * tally.top1()
            ));
        }
        bar.finish_and_clear();
        Ok((model, tally, lr))
    }

    /// The validation pass (without autodiff).
    fn validate(&self, model: &AlexNet<B>) -> Result<(Tally, Vec<Vec<usize>>)> {
        evaluate(
            &model.valid(),
            self.data.val.clone(),
            self.transform.clone(),
            &self.loader,
            &self.devices[0],
        )
    }

    /// Records an epoch: its line, the schedule and early stopping, `metrics.csv`, the best
    /// model so far, and the checkpoint.
    fn end_epoch(&mut self, model: &AlexNet<B>, row: EpochMetrics) -> Result<()> {
        let (config, state) = (self.config, &mut self.state);
        let say = |line: String| say(self.options, line);
        say(format!(
            "epoch {}/{}: train loss {:.4} top-1 {:.2}% | val loss {:.4} top-1 {:.2}% top-5 {:.2}% | lr {:.2e} | {:.1} s, {:.0} images/s",
            row.epoch,
            config.epochs,
            row.train_loss,
            100.0 * row.train_top1,
            row.val_loss,
            100.0 * row.val_top1,
            100.0 * row.val_top5,
            row.lr,
            row.seconds,
            row.train_images as f64 / row.train_seconds.max(1e-9)
        ));
        let best_so_far = state.history.iter().all(|m| row.val_top1 > m.val_top1);
        let val_loss = row.val_loss;
        state.epoch = row.epoch;
        state.history.push(row);
        if state.scheduler.end_epoch(val_loss) {
            say(format!(
                "validation loss has not improved for {} epochs: learning rate → {:.2e}",
                config.plateau_patience + 1,
                state.scheduler.lr
            ));
        }
        if state.early_stop.update(val_loss, config.patience) {
            state.stopped_early = true;
            say(format!(
                "early stopping: no validation-loss improvement for {} epochs",
                state.early_stop.bad_epochs
            ));
        }
        metrics::write_csv(&self.run_dir.join("metrics.csv"), &state.history)?;
        if best_so_far {
            let best = self.run_dir.join("model-best.safetensors");
            export::save_safetensors(&model.valid(), &best)?;
        }
        let ckpt_dir = self.run_dir.join("checkpoints");
        checkpoint::save(
            &ckpt_dir,
            model,
            &self.optim,
            state,
            config.keep_checkpoints,
        )
    }

    /// After the last epoch (or `--stop-after`): metrics, charts, and for a complete run the
    /// final model and `summary.json`. `confusion` is the last validation's, if this
    /// invocation trained at all.
    fn finish(self, model: &AlexNet<B>, confusion: Option<Vec<Vec<usize>>>) -> Result<Outcome> {
        let (config, run_dir, state) = (self.config, self.run_dir, &self.state);
        let outcome = |summary| Outcome {
            run_dir: run_dir.to_path_buf(),
            history: state.history.clone(),
            summary,
        };
        if state.history.is_empty() {
            return Ok(outcome(None));
        }
        metrics::write_csv(&run_dir.join("metrics.csv"), &state.history)?;
        let confusion = match confusion {
            Some(c) => c,
            // Resumed after the last epoch: recompute for the plot.
            None => self.validate(model)?.1,
        };
        plot::curves(&run_dir.join("curves.png"), &state.history)
            .context("cannot draw curves.png")?;
        plot::confusion(
            &run_dir.join("confusion.png"),
            &confusion,
            &self.data.classes,
        )
        .context("cannot draw confusion.png")?;
        let complete = state.epoch >= config.epochs || state.stopped_early;
        if !complete {
            say(
                self.options,
                format!(
                    "stopped after epoch {}; continue with --resume {}",
                    state.epoch,
                    run_dir.display()
                ),
            );
            return Ok(outcome(None));
        }
        let inner = model.valid();
        export::save_safetensors(&inner, &run_dir.join("model.safetensors"))?;
        export::save_burn(&inner, &run_dir.join("model.bpk"))?;
        let summary = Summary::from_history(
            &state.history,
            config.epochs,
            state.stopped_early,
            config.batch_size,
            self.backend.name(),
            self.parameters,
        );
        metrics::write_atomic(
            &run_dir.join("summary.json"),
            &serde_json::to_vec_pretty(&summary)?,
        )?;
        say(
            self.options,
            format!(
                "done: {} epochs, final val top-1 {:.2}% top-5 {:.2}%, best top-1 {:.2}% (epoch {}), {:.0} s, {:.0} training images/s → {}",
                summary.epochs,
                100.0 * summary.final_scores.top1,
                100.0 * summary.final_scores.top5,
                100.0 * summary.best.top1,
                summary.best.epoch,
                summary.wall_seconds,
                summary.train_images_per_second,
                run_dir.display()
            ),
        );
        Ok(outcome(Some(summary)))
    }
}

/// A progress line on stderr, unless `--quiet`.
fn say(options: &RunOptions, line: String) {
    if !options.quiet {
        eprintln!("{line}");
    }
}

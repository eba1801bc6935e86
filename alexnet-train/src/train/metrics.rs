//! Per-epoch metrics, `metrics.csv` and `summary.json`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Running sums over one pass.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Σ per-image loss.
    pub loss_sum: f64,
    /// Images whose top-1 guess is right.
    pub top1: usize,
    /// Images whose label is among the top 5.
    pub top5: usize,
    /// Images seen.
    pub count: usize,
}

impl Tally {
    /// Adds a batch: its mean loss and its `[n, classes]` logits, row-major.
    pub fn add(&mut self, mean_loss: f64, logits: &[f32], labels: &[usize]) {
        let n = labels.len();
        if n == 0 {
            return;
        }
        let classes = logits.len() / n;
        self.loss_sum += mean_loss * n as f64;
        for (row, &label) in logits.chunks_exact(classes).zip(labels) {
            let rank = rank_of(row, label);
            self.top1 += usize::from(rank < 1);
            self.top5 += usize::from(rank < 5);
        }
        self.count += n;
    }

    /// Mean loss.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1) as f64
    }

    /// Top-1 accuracy in [0, 1].
    pub fn top1(&self) -> f64 {
        self.top1 as f64 / self.count.max(1) as f64
    }

    /// Top-5 accuracy in [0, 1].
    pub fn top5(&self) -> f64 {
        self.top5 as f64 / self.count.max(1) as f64
    }
}

/// How many scores beat the label's (ties go against the label, so a constant output is
/// never "right"): 0 means top-1. NaN scores count as beating it.
pub fn rank_of(scores: &[f32], label: usize) -> usize {
    let own = scores[label];
    scores
        .iter()
        .enumerate()
        .filter(|&(i, &s)| i != label && (s >= own || s.is_nan() || own.is_nan()))
        .count()
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss (with augmentation and dropout).
    pub train_loss: f64,
    /// Training top-1 accuracy.
    pub train_top1: f64,
    /// Training top-5 accuracy (absent from checkpoints written before it was recorded).
    #[serde(default)]
    pub train_top5: f64,
    /// Mean validation loss.
    pub val_loss: f64,
    /// Validation top-1 accuracy.
    pub val_top1: f64,
    /// Validation top-5 accuracy.
    pub val_top5: f64,
    /// Learning rate used in the epoch.
    pub lr: f64,
    /// Wall time of the epoch (training and validation).
    pub seconds: f64,
    /// Wall time of the training part alone.
    pub train_seconds: f64,
    /// Training images seen.
    pub train_images: usize,
}

/// The CSV header.
pub const CSV_HEADER: &str =
    "epoch,train_loss,train_top1,train_top5,val_loss,val_top1,val_top5,lr,seconds,train_images_per_second";

/// Writes every row (the file is rewritten whole, so it always matches the checkpoint).
pub fn write_csv(path: &Path, rows: &[EpochMetrics]) -> Result<()> {
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for r in rows {
        let ips = r.train_images as f64 / r.train_seconds.max(1e-9);
        writeln!(
            text,
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6e},{:.3},{:.1}",
            r.epoch,
            r.train_loss,
            r.train_top1,
            r.train_top5,
            r.val_loss,
            r.val_top1,
            r.val_top5,
            r.lr,
            r.seconds,
            ips
        )?;
    }
    write_atomic(path, text.as_bytes())
}

/// Writes a file via a uniquely named temporary sibling and a rename, so readers never see
/// half of it and concurrent writers never share a temporary file. The file gets the
/// permissions `std::fs::write` would give it (0o666 less the umask), not tempfile's 0o600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let context = || format!("cannot write {}", path.display());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).with_context(context)?;
    tmp.write_all(bytes).with_context(context)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}

/// Validation numbers of one epoch, for the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Epoch.
    pub epoch: usize,
    /// Validation top-1.
    pub top1: f64,
    /// Validation top-5.
    pub top5: f64,
    /// Validation loss.
    pub loss: f64,
}

impl From<&EpochMetrics> for Scores {
    fn from(m: &EpochMetrics) -> Self {
        Self {
            epoch: m.epoch,
            top1: m.val_top1,
            top5: m.val_top5,
            loss: m.val_loss,
        }
    }
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The last epoch's validation scores.
    pub final_scores: Scores,
    /// The epoch with the best validation top-1.
    pub best: Scores,
    /// Epochs trained.
    pub epochs: usize,
    /// Epochs asked for.
    pub epochs_planned: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Σ epoch wall times (training and validation), over every session of the run.
    pub wall_seconds: f64,
    /// Training images per second (training passes only).
    pub train_images_per_second: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Backend.
    pub backend: String,
    /// Trainable parameters.
    pub parameters: usize,
}

impl Summary {
    /// Summarises `history` (not empty).
    pub fn from_history(
        history: &[EpochMetrics],
        epochs_planned: usize,
        stopped_early: bool,
        batch_size: usize,
        backend: &str,
        parameters: usize,
    ) -> Self {
        let last = history.last().expect("at least one epoch");
        let best = history.iter().fold(
            &history[0],
            |b, m| {
                if m.val_top1 > b.val_top1 {
                    m
                } else {
                    b
                }
            },
        );
        let images: usize = history.iter().map(|m| m.train_images).sum();
        let train_seconds: f64 = history.iter().map(|m| m.train_seconds).sum();
        Self {
            final_scores: last.into(),
            best: best.into(),
            epochs: last.epoch,
            epochs_planned,
            stopped_early,
            wall_seconds: history.iter().map(|m| m.seconds).sum(),
            train_images_per_second: images as f64 / train_seconds.max(1e-9),
            batch_size,
            backend: backend.into(),
            parameters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_tallies() {
        assert_eq!(rank_of(&[0.1, 0.9, 0.5], 1), 0);
        assert_eq!(rank_of(&[0.1, 0.9, 0.5], 0), 2);
        assert_eq!(rank_of(&[1.0, 1.0], 0), 1); // ties are not right
        let mut t = Tally::default();
        let logits: Vec<f32> = (0..2).flat_map(|_| (0..10).map(|c| c as f32)).collect();
        t.add(2.0, &logits, &[9, 3]); // rank 0, rank 6
        assert_eq!((t.top1, t.top5, t.count), (1, 1, 2));
        assert_eq!(t.loss(), 2.0);
    }

    #[test]
    fn write_atomic_replaces_whole_files_even_when_writers_race() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 10_000]).collect();
        std::thread::scope(|s| {
            for bytes in &contents {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, bytes).unwrap();
                    }
                });
            }
        });
        // One writer's bytes, whole; no temporary file left behind.
        assert!(contents.contains(&std::fs::read(&path).unwrap()));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        // The permissions std::fs::write gives a new file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let plain = dir.path().join("plain");
            std::fs::write(&plain, b"x").unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&path), mode(&plain));
            std::fs::remove_file(plain).unwrap();
        }
        // Errors name the file.
        let missing = dir.path().join("no-such-dir").join("x.json");
        let err = format!("{:#}", write_atomic(&missing, b"x").unwrap_err());
        assert!(err.contains("no-such-dir/x.json"), "{err}");
    }

    #[test]
    fn summary_picks_first_best() {
        let row = |epoch, val_top1| EpochMetrics {
            epoch,
            train_loss: 1.0,
            train_top1: 0.5,
            train_top5: 0.8,
            val_loss: 1.0,
            val_top1,
            val_top5: 0.9,
            lr: 0.1,
            seconds: 2.0,
            train_seconds: 1.0,
            train_images: 100,
        };
        let s = Summary::from_history(
            &[row(1, 0.3), row(2, 0.6), row(3, 0.6), row(4, 0.5)],
            5,
            true,
            8,
            "flex",
            10,
        );
        assert_eq!((s.best.epoch, s.final_scores.epoch, s.epochs), (2, 4, 4));
        assert_eq!(s.train_images_per_second, 100.0);
        assert_eq!(s.wall_seconds, 8.0);
    }
}

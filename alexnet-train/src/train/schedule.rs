//! Learning-rate schedules, stepped once per *epoch* (Burn 0.21's `LrScheduler`s step once per
//! iteration, and it has no reduce-on-plateau rule — the paper's: "divide the learning rate by
//! 10 when the validation error rate stopped improving").
//!
//! The whole state is a small serde value saved in every checkpoint, so a resumed run
//! continues the schedule exactly.

use anyhow::{bail, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Which schedule `--schedule` names (its parameters come from companion flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The same rate every epoch.
    Constant,
    /// ÷10 (`--lr-gamma`) every `--step-every` epochs.
    Step,
    /// ÷10 when the validation loss stops improving for `--plateau-patience` epochs.
    Plateau,
    /// Half a cosine down to 0 over the run.
    Cosine,
}

/// Which schedule, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate every epoch.
    Constant,
    /// Multiply by `gamma` every `every` epochs (the classic ÷10 every K).
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor (0.1 divides by 10).
        gamma: f64,
    },
    /// Multiply by `factor` when the validation loss has not improved (by more than a relative
    /// `threshold`) for more than `patience` epochs; never below `min_lr`. PyTorch's
    /// `ReduceLROnPlateau(mode="min", threshold_mode="rel", cooldown=0)`.
    Plateau {
        /// Epochs without improvement tolerated.
        patience: usize,
        /// Factor (0.1 divides by 10).
        factor: f64,
        /// Relative improvement that counts.
        threshold: f64,
        /// Floor.
        min_lr: f64,
    },
    /// Half a cosine from the initial rate at epoch 1 to `min_lr` after the last epoch.
    Cosine {
        /// Floor.
        min_lr: f64,
    },
}

impl Schedule {
    /// `--schedule` with its companion flags.
    pub fn new(kind: ScheduleKind, step_every: usize, patience: usize, gamma: f64) -> Result<Self> {
        if !(gamma > 0.0 && gamma < 1.0) {
            bail!("--lr-gamma must be in (0, 1), got {gamma}");
        }
        Ok(match kind {
            ScheduleKind::Constant => Self::Constant,
            ScheduleKind::Step => {
                if step_every == 0 {
                    bail!("--step-every must be at least 1");
                }
                Self::Step {
                    every: step_every,
                    gamma,
                }
            }
            ScheduleKind::Plateau => Self::Plateau {
                patience,
                factor: gamma,
                threshold: 1e-4,
                min_lr: 0.0,
            },
            ScheduleKind::Cosine => Self::Cosine { min_lr: 0.0 },
        })
    }
}

/// A schedule in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheduler {
    /// The rule.
    pub schedule: Schedule,
    /// Rate at epoch 1.
    pub base_lr: f64,
    /// Total epochs (cosine's horizon).
    pub epochs: usize,
    /// Rate of the next epoch.
    pub lr: f64,
    /// Plateau: best validation loss so far.
    pub best: Option<f64>,
    /// Plateau: epochs since the last improvement.
    pub bad_epochs: usize,
}

impl Scheduler {
    /// Starts at `base_lr`.
    pub fn new(schedule: Schedule, base_lr: f64, epochs: usize) -> Self {
        Self {
            schedule,
            base_lr,
            epochs,
            lr: base_lr,
            best: None,
            bad_epochs: 0,
        }
    }

    /// The learning rate of `epoch` (1-based).
    pub fn lr_for(&self, epoch: usize) -> f64 {
        match &self.schedule {
            Schedule::Constant | Schedule::Plateau { .. } => self.lr,
            Schedule::Step { every, gamma } => {
                self.base_lr * gamma.powi(((epoch - 1) / every) as i32)
            }
            Schedule::Cosine { min_lr } => {
                let t = (epoch - 1) as f64 / self.epochs.max(1) as f64;
                min_lr + 0.5 * (self.base_lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Records the validation loss at the end of an epoch (only the plateau rule uses it).
    /// Returns true when the rate was reduced.
    pub fn end_epoch(&mut self, val_loss: f64) -> bool {
        let Schedule::Plateau {
            patience,
            factor,
            threshold,
            min_lr,
        } = self.schedule
        else {
            return false;
        };
        let improved = match self.best {
            None => true,
            Some(best) => val_loss < best * (1.0 - threshold),
        };
        if improved {
            self.best = Some(val_loss);
            self.bad_epochs = 0;
            return false;
        }
        self.bad_epochs += 1;
        if self.bad_epochs > patience {
            self.bad_epochs = 0;
            let reduced = (self.lr * factor).max(min_lr);
            let changed = reduced < self.lr;
            self.lr = reduced;
            return changed;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_divides_by_ten_every_k() {
        let s = Scheduler::new(
            Schedule::new(ScheduleKind::Step, 3, 0, 0.1).unwrap(),
            0.1,
            10,
        );
        let lrs: Vec<f64> = (1..=7).map(|e| s.lr_for(e)).collect();
        let want = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001];
        for (a, b) in lrs.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{lrs:?}");
        }
    }

    #[test]
    fn cosine_goes_from_base_to_near_zero() {
        let s = Scheduler::new(Schedule::Cosine { min_lr: 0.0 }, 0.1, 4);
        assert_eq!(s.lr_for(1), 0.1);
        assert!((s.lr_for(3) - 0.05).abs() < 1e-12);
        assert!(s.lr_for(4) < s.lr_for(3) && s.lr_for(4) > 0.0);
    }

    #[test]
    fn plateau_waits_patience_epochs_then_divides() {
        let mut s = Scheduler::new(
            Schedule::new(ScheduleKind::Plateau, 1, 2, 0.1).unwrap(),
            0.1,
            10,
        );
        assert!(!s.end_epoch(1.0)); // best
        assert!(!s.end_epoch(0.9)); // improved
        assert!(!s.end_epoch(0.95)); // bad 1
        assert!(!s.end_epoch(0.9)); // bad 2 (not better than best·(1-1e-4))
        assert_eq!(s.lr_for(5), 0.1);
        assert!(s.end_epoch(0.91)); // bad 3 > patience 2: divide
        assert!((s.lr_for(6) - 0.01).abs() < 1e-12);
        assert!(!s.end_epoch(0.5)); // improvement resets
        assert_eq!(s.bad_epochs, 0);
    }

    #[test]
    fn bad_schedules_are_errors() {
        assert!(Schedule::new(ScheduleKind::Step, 0, 1, 0.1).is_err());
        assert!(Schedule::new(ScheduleKind::Step, 1, 1, 1.5).is_err());
    }
}

//! Reading weight files the way both binaries do: [`read_checkpoint`], then a check of the
//! values. PyTorch loads NaN and infinite weights without a word, and a network built from
//! them answers NaN or, worse, plausible numbers; here they are a warning naming each tensor
//! and how many such values it holds, or an error when asked to be strict.

use std::path::Path;

use alexnet_model::checkpoint::{read_checkpoint, Checkpoint};
use anyhow::{bail, Result};

/// Reads `path` ([`read_checkpoint`]); NaN or infinite values are a warning on stderr, or an
/// error when `strict`, naming the tensors and counts.
pub fn read_checked(path: &Path, strict: bool) -> Result<Checkpoint> {
    let checkpoint = read_checkpoint(path)?;
    if let Some(summary) = non_finite_summary(&checkpoint) {
        let line = format!("{}: {summary}", path.display());
        if strict {
            bail!("{line}");
        }
        eprintln!("warning: {line}");
    }
    Ok(checkpoint)
}

/// "NaN or infinite values in 2 tensors: `a` (3), `b` (1)", or `None` when every value is
/// finite.
fn non_finite_summary(checkpoint: &Checkpoint) -> Option<String> {
    let found = checkpoint.non_finite();
    if found.is_empty() {
        return None;
    }
    let tensors: Vec<String> = found
        .iter()
        .map(|(key, count)| format!("`{key}` ({count})"))
        .collect();
    Some(format!(
        "NaN or infinite values in {} tensor{}: {}",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        tensors.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_model::tensor::HostTensor;
    use alexnet_model::weights::StateDict;

    #[test]
    fn non_finite_values_are_named_with_their_counts() {
        let tensor = |values: Vec<f32>| HostTensor {
            shape: vec![values.len()],
            values,
        };
        let mut dict = StateDict::new();
        dict.insert("a".into(), tensor(vec![1.0, f32::NAN, f32::INFINITY]));
        dict.insert("b".into(), tensor(vec![0.0, 2.0]));
        dict.insert("c".into(), tensor(vec![f32::NEG_INFINITY]));
        let mut checkpoint = Checkpoint {
            format: alexnet_model::checkpoint::WeightFormat::Safetensors,
            state_dict: dict,
            config: None,
        };
        assert_eq!(
            non_finite_summary(&checkpoint).unwrap(),
            "NaN or infinite values in 2 tensors: `a` (2), `c` (1)"
        );
        checkpoint.state_dict.remove("a");
        checkpoint.state_dict.remove("c");
        assert_eq!(non_finite_summary(&checkpoint), None);
    }
}

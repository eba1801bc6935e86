//! Flag values both command lines parse.

use alexnet_model::{AlexNetConfig, Variant};
use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::backend::BackendKind;

/// Parses a [`ValueEnum`] choice; the error names the value and every choice, e.g. "unknown
/// schedule `linear` (expected constant, step, plateau or cosine)".
pub fn choice<T: ValueEnum>(what: &str, text: &str) -> Result<T, String> {
    T::from_str(text, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        let expected = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        format!("unknown {what} `{text}` (expected {expected})")
    })
}

/// A number flag that must be finite: NaN and infinities are refused where they enter.
pub fn parse_finite(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|e| format!("{e}"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("`{text}` is not a finite number"))
    }
}

/// [`parse_finite`] for `f32` flags.
pub fn parse_finite_f32(text: &str) -> Result<f32, String> {
    parse_finite(text).map(|v| v as f32)
}

/// `--backend`, accepting only the backends compiled in.
pub fn parse_backend(name: &str) -> Result<BackendKind, String> {
    BackendKind::parse(name).map_err(|e| e.to_string())
}

/// `--variant`: `paper`, `torchvision` or `cifar`.
pub fn parse_variant(name: &str) -> Result<alexnet_model::Variant, String> {
    alexnet_model::Variant::parse(name).map_err(|e| e.to_string())
}

/// Parses `R,G,B` (`--mean`, `--std`).
pub fn parse_triple(text: &str) -> Result<[f32; 3], String> {
    let values: Vec<f32> = text
        .split(',')
        .map(parse_finite_f32)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected three numbers `R,G,B`: {e}"))?;
    values
        .try_into()
        .map_err(|v: Vec<f32>| format!("expected three numbers, got {}", v.len()))
}

/// Which network: variant, classes and input side.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// paper, torchvision or cifar.
    #[arg(long, default_value = "torchvision", value_parser = parse_variant)]
    pub variant: Variant,
    /// Output classes (default: 1000, or 10 for cifar).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Square input side (default: the variant's: 224, or 32 for cifar).
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Paper variant only: Caffe's 227×227 input without conv1 padding.
    #[arg(long)]
    pub caffe_input: bool,
}

impl ModelArgs {
    /// The configuration and the input side these flags describe.
    pub fn config(&self) -> Result<(AlexNetConfig, usize)> {
        let default_classes = if self.variant == Variant::Cifar {
            10
        } else {
            1000
        };
        let mut config = self
            .variant
            .config(self.num_classes.unwrap_or(default_classes));
        if self.caffe_input {
            anyhow::ensure!(
                self.variant == Variant::Paper,
                "--caffe-input applies to the paper variant only"
            );
            config = config.with_caffe_input();
        }
        config.validate()?;
        let input_size = self.input_size.unwrap_or(config.input_size);
        Ok((config, input_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_name_every_value() {
        #[derive(Clone, Debug, PartialEq, ValueEnum)]
        enum Fruit {
            Apple,
            BloodOrange,
            Kiwi,
        }
        assert_eq!(
            choice::<Fruit>("fruit", "blood-orange"),
            Ok(Fruit::BloodOrange)
        );
        assert_eq!(
            choice::<Fruit>("fruit", "pear").unwrap_err(),
            "unknown fruit `pear` (expected apple, blood-orange or kiwi)"
        );
    }

    #[test]
    fn finite_numbers() {
        assert_eq!(parse_finite("0.02"), Ok(0.02));
        for bad in ["NaN", "inf", "-inf", "1e999"] {
            assert!(
                parse_finite(bad).unwrap_err().contains("not a finite"),
                "{bad}"
            );
        }
        assert!(parse_finite("x").is_err());
    }

    #[test]
    fn triples() {
        assert_eq!(parse_triple("0.5, 1,2").unwrap(), [0.5, 1.0, 2.0]);
        assert!(parse_triple("1,2").unwrap_err().contains("got 2"));
        assert!(parse_triple("1,x,2").is_err());
        assert!(parse_triple("1,NaN,2").is_err());
    }
}

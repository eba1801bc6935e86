//! `alexnet-infer info`: the layer table of a variant.

use alexnet_model::layers::LayerShapes;
use anyhow::Result;
use clap::Args;

use crate::ModelArgs;

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    model: ModelArgs,
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn run(args: &InfoArgs) -> Result<()> {
    let (config, input_size) = args.model.config()?;
    let shapes = LayerShapes::compute(&config, input_size)?;
    println!(
        "AlexNet, {} variant: {} classes, input 3×{input_size}×{input_size}",
        config.variant.name(),
        config.num_classes
    );
    println!("{:<8} {:>16} {:>14}", "layer", "output", "parameters");
    for layer in &shapes.layers {
        let shape: Vec<String> = layer.shape.iter().map(|d| d.to_string()).collect();
        println!(
            "{:<8} {:>16} {:>14}",
            layer.name,
            shape.join("×"),
            thousands(layer.params)
        );
    }
    println!("total parameters: {}", thousands(shapes.total_params()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(60_965_224), "60,965,224");
    }
}

//! Output shape of every layer, computed from an [`AlexNetConfig`] without running anything.
//! Used to validate inputs (so a too-small image is an error, not a panic) and by `info`.

use crate::config::{AlexNetConfig, POOL_KERNEL, POOL_STRIDE};
use crate::error::AlexNetError;

/// One row of the layer table: name, output shape `[C, H, W]` or `[features]`, parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerShape {
    /// Layer name as in [`AlexNet`](crate::AlexNet): `conv1`, `pool1`, `fc6`, ...
    pub name: String,
    /// Output shape without the batch dimension.
    pub shape: Vec<usize>,
    /// Trainable parameters of this layer.
    pub params: usize,
}

/// The layer table of a configuration at a given square input side.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerShapes {
    /// Layers in forward order.
    pub layers: Vec<LayerShape>,
}

/// Output side of a convolution or pool, or `None` when the window does not fit.
fn window_output(side: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = side + 2 * padding;
    (padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

impl LayerShapes {
    /// Computes every layer's output for an `input_size`×`input_size` image, or explains why
    /// the image does not fit (naming the smallest input that does).
    pub fn compute(config: &AlexNetConfig, input_size: usize) -> Result<Self, AlexNetError> {
        Self::try_compute(config, input_size).map_err(|layer| {
            let hint = match Self::minimum_input(config) {
                Some(min) if config.adaptive_pool.is_some() => {
                    format!("the smallest input this network accepts is {min}×{min}")
                }
                _ => format!(
                    "this network is built for {0}×{0} inputs",
                    config.input_size
                ),
            };
            AlexNetError::Input(format!(
                "a {input_size}×{input_size} image is too small or the wrong size at {layer}; {hint}"
            ))
        })
    }

    /// The smallest square input side for which every layer fits.
    pub fn minimum_input(config: &AlexNetConfig) -> Option<usize> {
        (1..=4096).find(|&side| Self::try_compute(config, side).is_ok())
    }

    /// The layer table, or the name of the first layer that does not fit.
    fn try_compute(config: &AlexNetConfig, input_size: usize) -> Result<Self, String> {
        let (mut layers, side) = Self::features(config, input_size)?;
        let channels = config.convs[4].out_channels;
        let map = match config.adaptive_pool {
            Some(out) => {
                layers.push(LayerShape {
                    name: "avgpool".into(),
                    shape: vec![channels, out, out],
                    params: 0,
                });
                out
            }
            None => {
                let (_, expected) = Self::features(config, config.input_size)
                    .map_err(|layer| format!("{layer} at the configured input_size"))?;
                if side != expected {
                    return Err(format!(
                        "fc6 (it expects a {expected}×{expected} pool5 map, this input gives {side}×{side})"
                    ));
                }
                side
            }
        };
        let mut features = channels * map * map;
        for (name, width) in [
            ("fc6", config.hidden),
            ("fc7", config.hidden),
            ("fc8", config.num_classes),
        ] {
            layers.push(LayerShape {
                name: name.into(),
                shape: vec![width],
                params: features * width + width,
            });
            features = width;
        }
        Ok(Self { layers })
    }

    /// conv1..pool5: their rows and the side of the pool5 map.
    fn features(
        config: &AlexNetConfig,
        input_size: usize,
    ) -> Result<(Vec<LayerShape>, usize), String> {
        let mut layers = Vec::new();
        let mut side = input_size;
        let mut channels = config.in_channels;
        for (i, conv) in config.convs.iter().enumerate() {
            let n = i + 1;
            side = window_output(side, conv.kernel, conv.stride, conv.padding)
                .ok_or(format!("conv{n}"))?;
            let weights = conv.out_channels * (channels / conv.groups) * conv.kernel * conv.kernel;
            channels = conv.out_channels;
            layers.push(LayerShape {
                name: format!("conv{n}"),
                shape: vec![channels, side, side],
                params: weights + channels,
            });
            if n <= 2 && config.lrn.is_some() {
                layers.push(LayerShape {
                    name: format!("lrn{n}"),
                    shape: vec![channels, side, side],
                    params: 0,
                });
            }
            if matches!(n, 1 | 2 | 5) {
                side =
                    window_output(side, POOL_KERNEL, POOL_STRIDE, 0).ok_or(format!("pool{n}"))?;
                layers.push(LayerShape {
                    name: format!("pool{n}"),
                    shape: vec![channels, side, side],
                    params: 0,
                });
            }
        }
        Ok((layers, side))
    }

    /// Number of features entering fc6.
    pub fn fc6_inputs(&self) -> usize {
        let fc6 = self.layers.iter().position(|l| l.name == "fc6");
        fc6.map(|i| self.layers[i - 1].shape.iter().product())
            .unwrap_or(0)
    }

    /// Total trainable parameters.
    pub fn total_params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }
}

//! `alexnet-infer embed`: one feature vector per image, to safetensors or CSV.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use alexnet_common::backend::{dispatch, BackendJob};
use alexnet_model::AlexNetBackend;
use alexnet_model::FeatureLayer;
use anyhow::{bail, Context, Result};
use clap::Args;
use safetensors::tensor::{Dtype, TensorView};

use crate::inputs::{
    check_batch_memory, collect_images, keep_readable, prepare_views, progress, stack,
    PreprocessArgs, WeightArgs,
};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    weights: WeightArgs,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// fc7 (after ReLU, the classic AlexNet feature), fc6, or pool5 (the flattened map).
    #[arg(long, default_value = "fc7", value_parser = parse_layer)]
    layer: FeatureLayer,
    /// Output: `.csv` (path, then the features) or safetensors (`features` [N, D] and the
    /// paths in the metadata).
    #[arg(long)]
    out: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Images, or folders searched recursively for images.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn parse_layer(name: &str) -> Result<FeatureLayer, String> {
    match FeatureLayer::parse(name) {
        Ok(FeatureLayer::Logits) => Err("embed takes pool5, fc6 or fc7".into()),
        other => other.map_err(|e| e.to_string()),
    }
}

struct Embed<'a> {
    args: &'a EmbedArgs,
    images: Vec<PathBuf>,
}

/// The embedded images' paths, their features (row-major `[N, D]`), `D`, and failures.
type Embedded = (Vec<String>, Vec<f32>, usize, usize);

impl BackendJob for Embed<'_> {
    type Output = Embedded;

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<Embedded> {
        let args = self.args;
        let model = args.weights.load::<B>(&device)?;
        let preprocessing = args
            .preprocess
            .apply(args.weights.default_preprocessing(model.config()))?;
        check_batch_memory(model.config(), &preprocessing, args.batch_size, 1)?;
        let (mut paths, mut features, mut width, mut failed) = (vec![], vec![], 0, 0);
        let bar = progress(self.images.len(), "embedding");
        let strict = args.preprocess.strict_images;
        for batch in self.images.chunks(args.batch_size) {
            let prepared = prepare_views(batch, &preprocessing, false, strict);
            let (kept, views, batch_failed) = keep_readable(batch, prepared, &bar);
            failed += batch_failed;
            paths.extend(kept.iter().map(|p| p.display().to_string()));
            if !views.is_empty() {
                let out = model.try_embed(stack::<B>(&views, &device), args.layer)?;
                width = out.dims()[1];
                let values = out.into_data().convert::<f32>().to_vec::<f32>();
                features.extend(values.map_err(|e| anyhow::anyhow!("{e:?}"))?);
            }
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
        Ok((paths, features, width, failed))
    }
}

fn write_csv(out: &Path, paths: &[String], features: &[f32], width: usize) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    write!(file, "path")?;
    for i in 0..width {
        write!(file, ",f{i}")?;
    }
    writeln!(file)?;
    for (path, row) in paths.iter().zip(features.chunks(width)) {
        write!(file, "\"{}\"", path.replace('"', "\"\""))?;
        for v in row {
            write!(file, ",{v}")?;
        }
        writeln!(file)?;
    }
    file.flush()?;
    Ok(())
}

fn write_safetensors(
    out: &Path,
    paths: &[String],
    features: &[f32],
    width: usize,
    layer: &str,
) -> Result<()> {
    let bytes: Vec<u8> = features.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![paths.len(), width], &bytes)?;
    let metadata = HashMap::from([
        ("paths".to_string(), serde_json::to_string(paths)?),
        ("layer".to_string(), layer.to_string()),
    ]);
    safetensors::serialize_to_file([("features", view)], Some(metadata), out)?;
    Ok(())
}

pub fn run(args: &EmbedArgs) -> Result<()> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be positive");
    let images = collect_images(&args.paths)?;
    let total = images.len();
    let (paths, features, width, failed) =
        dispatch(args.weights.backend()?, Embed { args, images })?;
    if paths.is_empty() {
        bail!("none of the {total} images could be read");
    }
    let is_csv = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let layer = format!("{:?}", args.layer).to_lowercase();
    let written = if is_csv {
        write_csv(&args.out, &paths, &features, width)
    } else {
        write_safetensors(&args.out, &paths, &features, width, &layer)
    };
    written.with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} × {width} {layer} features to {}",
        paths.len(),
        args.out.display()
    );
    if failed > 0 {
        bail!("{failed} of {total} images could not be read");
    }
    Ok(())
}

//! Burn's own format: a Burnpack file (burn-store's `.bpk`) holding the state dict under
//! Caffe names (`conv1.weight` … `fc8.bias`) in PyTorch's conventions, and the
//! [`AlexNetConfig`] as JSON, both in the file's metadata ([`CONFIG_METADATA_KEY`]) and as the
//! U8 tensor [`CONFIG_TENSOR`] (burn-store 0.21 offers no public reader for the metadata).
//! Storing the state dict rather than Burn's module tree keeps a file independent of
//! `max_param_bytes`: a model saved with fc6 split into slices (wgpu) loads unsplit on a CPU.

use std::panic::catch_unwind;
use std::path::Path;

use burn::module::ParamId;
use burn::tensor::TensorData;
use burn_store::{BurnpackStore, BurnpackWriter, ModuleStore, TensorSnapshot};

use super::{file_error, host_tensor, parse_config, CONFIG_METADATA_KEY};
use crate::config::AlexNetConfig;
use crate::error::AlexNetError;
use crate::weights::StateDict;

/// Name of the U8 tensor holding the configuration's JSON in a Burn-format file.
pub const CONFIG_TENSOR: &str = "__alexnet_config__";

/// Reads a Burnpack file: its state dict and the configuration it stores.
pub(super) fn read_burnpack(
    path: &Path,
) -> Result<(StateDict, Option<AlexNetConfig>), AlexNetError> {
    let snapshots = catch_unwind(|| {
        let mut store = BurnpackStore::from_file(path).auto_extension(false);
        store
            .get_all_snapshots()
            .map(|all| all.values().cloned().collect::<Vec<_>>())
    })
    .map_err(|_| file_error(path, "corrupt Burnpack file (the reader failed)"))?
    .map_err(|e| file_error(path, e))?;
    let mut dict = StateDict::new();
    let mut config = None;
    for snapshot in snapshots {
        let name = snapshot.full_path();
        let data = snapshot
            .to_data()
            .map_err(|e| file_error(path, format!("`{name}`: {e:?}")))?;
        if name == CONFIG_TENSOR {
            config = Some(parse_config(path, &data.bytes)?);
            continue;
        }
        let tensor = host_tensor(&name, data).map_err(|e| file_error(path, e))?;
        dict.insert(name, tensor);
    }
    Ok((dict, config))
}

fn snapshot(key: String, data: TensorData) -> TensorSnapshot {
    TensorSnapshot::from_data(data, vec![key], Vec::new(), ParamId::new())
}

/// Writes `dict` (Caffe names) and the configuration's JSON to a Burnpack file at `path`.
pub(super) fn write_burnpack(
    path: &Path,
    dict: StateDict,
    config_json: &str,
) -> Result<(), AlexNetError> {
    let mut snapshots: Vec<TensorSnapshot> = dict
        .into_iter()
        .map(|(key, t)| snapshot(key, TensorData::new(t.values, t.shape)))
        .collect();
    let config_bytes = config_json.as_bytes().to_vec();
    let len = config_bytes.len();
    snapshots.push(snapshot(
        CONFIG_TENSOR.to_string(),
        TensorData::new(config_bytes, [len]),
    ));
    BurnpackWriter::new(snapshots)
        .with_metadata("format", "burnpack")
        .with_metadata("producer", "alexnet-model")
        .with_metadata(CONFIG_METADATA_KEY, config_json)
        .write_to_file(path)
        .map_err(|e| file_error(path, e))
}

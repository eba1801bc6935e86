//! Weight files: format detection, PyTorch `.pth` (zip and legacy), safetensors and Burn's format, in and out.

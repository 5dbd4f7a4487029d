//! Reading a checkpoint's tensors: `model.safetensors` (or a sharded set, or `pytorch_model.bin`), in f32, with
//! weight-normalised layers folded into plain weights and the training-only posterior encoder left out.
//!
//! Weight norm stores a convolution's weight as a magnitude `g` (shape `[out, 1, 1]`) and a direction `v`; the
//! weight is `w = g · v / ‖v‖` with the norm over all dimensions but the first. Hub checkpoints (saved by
//! transformers 4.x) name the pair `<layer>.weight_g` / `<layer>.weight_v`; transformers 5 writes
//! `<layer>.parametrizations.weight.original0` / `original1`. Both become `<layer>.weight`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{io_err, Result, TtsError};

/// Tensors under this prefix are only used in training.
const SKIPPED_PREFIX: &str = "posterior_encoder.";

const WEIGHT_NORM_NAMES: [(&str, &str); 2] =
    [(".weight_g", ".weight_v"), (".parametrizations.weight.original0", ".parametrizations.weight.original1")];

/// The checkpoint files of a model folder, in the order they are read.
fn checkpoint_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(io_err(&index))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| TtsError::Config { path: index.clone(), reason: e.to_string() })?;
        let mut files: Vec<String> = json["weight_map"]
            .as_object()
            .ok_or_else(|| TtsError::Config { path: index.clone(), reason: "no weight_map".into() })?
            .values()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let bin = dir.join("pytorch_model.bin");
    if bin.exists() {
        return Ok(vec![bin]);
    }
    Err(TtsError::NotFound(format!("{}: no model.safetensors or pytorch_model.bin", dir.display())))
}

fn read_file(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let weight_err =
        |e: candle_core::Error| TtsError::Weight { name: path.display().to_string(), reason: e.to_string() };
    if path.extension().is_some_and(|e| e == "bin") {
        return candle_core::pickle::read_all(path).map_err(weight_err);
    }
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    Ok(candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(weight_err)?.into_iter().collect())
}

/// All inference tensors of the model in `dir`, in f32 on the CPU, weight norm folded.
pub fn load(dir: &Path) -> Result<HashMap<String, Tensor>> {
    let mut raw = HashMap::new();
    for file in checkpoint_files(dir)? {
        for (name, tensor) in read_file(&file)? {
            if !name.starts_with(SKIPPED_PREFIX) {
                raw.insert(name, tensor.to_dtype(DType::F32)?);
            }
        }
    }
    fold_weight_norm(raw)
}

/// Replaces every (magnitude, direction) pair by the weight it stands for.
pub fn fold_weight_norm(mut tensors: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    for (g_suffix, v_suffix) in WEIGHT_NORM_NAMES {
        let layers: Vec<String> = tensors.keys().filter_map(|k| k.strip_suffix(g_suffix)).map(str::to_owned).collect();
        for layer in layers {
            let g_name = format!("{layer}{g_suffix}");
            let v_name = format!("{layer}{v_suffix}");
            let (Some(g), Some(v)) = (tensors.remove(&g_name), tensors.remove(&v_name)) else {
                return Err(TtsError::Weight { name: v_name, reason: format!("missing (found {g_name})") });
            };
            let w = weight_norm(&g, &v).map_err(|e| TtsError::Weight { name: layer.clone(), reason: e.to_string() })?;
            tensors.insert(format!("{layer}.weight"), w);
        }
        if let Some(orphan) = tensors.keys().find(|k| k.ends_with(v_suffix)) {
            return Err(TtsError::Weight { name: orphan.clone(), reason: format!("no matching {g_suffix}") });
        }
    }
    Ok(tensors)
}

/// `v · (g / ‖v‖)`, the norm taken over all dimensions but the first (PyTorch's `_weight_norm`, `dim=0`).
fn weight_norm(g: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
    let out = v.dim(0)?;
    let norm = v.reshape((out, ()))?.sqr()?.sum_keepdim(1)?.sqrt()?;
    let mut shape = vec![out];
    shape.extend(std::iter::repeat_n(1, v.rank() - 1));
    let scale = (g.reshape(shape.as_slice())? / norm.reshape(shape.as_slice())?)?;
    v.broadcast_mul(&scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_weight_norm_namings_fold_to_the_same_weight() {
        let v = Tensor::new(&[[[3f32, 0.], [0., 4.]], [[1., 1.], [1., 1.]]], &Device::Cpu).unwrap();
        let g = Tensor::new(&[[[10f32]], [[2.]]], &Device::Cpu).unwrap();
        for (gs, vs) in WEIGHT_NORM_NAMES {
            let map = HashMap::from([(format!("a{gs}"), g.clone()), (format!("a{vs}"), v.clone())]);
            let out = fold_weight_norm(map).unwrap();
            let w = out["a.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(w, vec![6., 0., 0., 8., 1., 1., 1., 1.]);
        }
    }

    #[test]
    fn a_lone_direction_is_an_error() {
        let v = Tensor::zeros((2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let map = HashMap::from([("a.weight_v".to_owned(), v)]);
        assert!(matches!(fold_weight_norm(map), Err(TtsError::Weight { .. })));
    }
}

//! On a GPU (`--features cuda`, run where one is): candle's f16 sums agree with the CPU's. Built
//! for a Pascal card (`source scripts/cuda-env.sh 61`), these reductions run the half-precision
//! `atomicAdd` that `scripts/cuda/pascal-compat.cuh` supplies below sm_70 (a newer GPU runs that
//! build too: the driver compiles its sm_61 PTX for the card); built for sm_70+, CUDA's own.
//! Without the `cuda` feature this file is empty.
#![cfg(feature = "cuda")]

use candle_core::{DType, Device, Tensor};

#[test]
fn half_precision_sums_on_cuda_match_the_cpu() {
    let gpu = Device::new_cuda(0).expect("a CUDA device (this test is for machines with one)");
    // Values whose f16 sums stay exact enough to compare: small integers and halves.
    let n = 257 * 129;
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 17) as f32 * 0.5 - 4.0).collect();
    let cpu = Tensor::from_vec(values, (257, 129), &Device::Cpu).unwrap();
    for dim in [0usize, 1] {
        let want: Vec<f32> = cpu.sum_keepdim(dim).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let half = cpu.to_dtype(DType::F16).unwrap().to_device(&gpu).unwrap();
        // Strided (a transposed view) and contiguous reductions take different kernels.
        for t in [half.clone(), half.t().unwrap().contiguous().unwrap().t().unwrap()] {
            let got: Vec<f32> =
                t.sum_keepdim(dim).unwrap().to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 0.5 + w.abs() * 2e-3, "dim {dim}: {g} vs {w}");
            }
        }
    }
    let all = cpu.to_dtype(DType::F16).unwrap().to_device(&gpu).unwrap().sum_all().unwrap();
    let want = cpu.sum_all().unwrap().to_scalar::<f32>().unwrap();
    let got = all.to_dtype(DType::F32).unwrap().to_scalar::<f32>().unwrap();
    assert!((got - want).abs() <= 1.0 + want.abs() * 2e-3, "{got} vs {want}");
}

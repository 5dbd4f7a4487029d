// Piface's compatibility header for building candle's CUDA kernels (candle-kernels 0.11) for
// Pascal cards (compute capability 6.x: the GTX 1080 Ti is 6.1). `scripts/cuda-env.sh` forces it
// into every nvcc call of a build for such a card (`NVCC_PREPEND_FLAGS=-include <this file>`),
// so no third-party source is changed or copied; above 6.x it is not used at all, and every
// definition below is also guarded by the device pass's architecture.
//
// candle-kernels does not compile below sm_70 for two reasons, both in code Piface never runs
// (its models are f32: no f16 sums, no mixture-of-experts layers):
//   1. reduce.cu's f16 sum calls `atomicAdd(__half*, __half)`, which CUDA provides from sm_70.
//      Below it, the same operation is built here from a compare-and-swap loop on the aligned
//      32-bit word that holds the half, as CUDA's own programming guide does for doubles.
//   2. moe/moe_wmma*.cu use the tensor-core WMMA API (`nvcuda::wmma`), which `<mma.h>` hides
//      below sm_70. Stand-ins with the same names make those sources compile; a kernel that
//      reaches one stops with a trap (a launch error on the host), never a wrong result.
// Upstream tracks the same fix (huggingface/candle pull request #3494); once a candle release
// carries it, cuda-env.sh stops forcing this file (see ARCHITECTURE.md, "CUDA builds").
#pragma once

#include <cuda_fp16.h>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 700

__device__ __forceinline__ __half atomicAdd(__half *address, __half val) {
  // The 32-bit word that holds the half, and which of its two halves it is.
  unsigned int *word = reinterpret_cast<unsigned int *>(reinterpret_cast<size_t>(address) & ~size_t(3));
  const unsigned int shift = (reinterpret_cast<size_t>(address) & 2) ? 16 : 0;
  unsigned int old = *word, assumed;
  do {
    assumed = old;
    const unsigned short bits = static_cast<unsigned short>((assumed >> shift) & 0xffffu);
    // f16 + f16 is exact in f32, so one rounding back gives what __hadd gives.
    const __half sum = __float2half(__half2float(__ushort_as_half(bits)) + __half2float(val));
    const unsigned int updated =
        (assumed & ~(0xffffu << shift)) | (static_cast<unsigned int>(__half_as_ushort(sum)) << shift);
    old = atomicCAS(word, assumed, updated);
  } while (assumed != old);
  return __ushort_as_half(static_cast<unsigned short>((old >> shift) & 0xffffu));
}

namespace nvcuda {
namespace wmma {
struct row_major;
struct col_major;
struct matrix_a;
struct matrix_b;
struct accumulator;
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  enum { num_elements = 1 };
  T x[num_elements];
};

template <typename Frag, typename V>
__device__ __forceinline__ void fill_fragment(Frag &, const V &) { __trap(); }
template <typename Frag, typename P>
__device__ __forceinline__ void load_matrix_sync(Frag &, const P *, unsigned) { __trap(); }
template <typename Frag, typename P>
__device__ __forceinline__ void load_matrix_sync(Frag &, const P *, unsigned, layout_t) { __trap(); }
template <typename P, typename Frag>
__device__ __forceinline__ void store_matrix_sync(P *, const Frag &, unsigned, layout_t) { __trap(); }
template <typename D, typename A, typename B, typename C>
__device__ __forceinline__ void mma_sync(D &, const A &, const B &, const C &) { __trap(); }
}  // namespace wmma
}  // namespace nvcuda

#endif

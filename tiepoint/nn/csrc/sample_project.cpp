// Fused deformable sampling + projection for one feature level (CPU).
//
// out[b, n, :] += sum_m  weight[m, :, :]^T  bilinear(feat[b], pos[b, n, m])
//
// feat is channels-last (B, H, W, C); pos holds (x, y) in pixels of this level, with the centre of
// the top-left pixel at (0, 0); taps outside the map read zero (grid_sample with zero padding and
// align_corners=True). The sampled C-vector of each (keypoint, sample) lives only in a small
// per-tile buffer (TILE keypoints, small enough to stay in cache): the (B, N, M, C) tensor of the
// two-step reference path is never built.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

namespace {

template <typename scalar_t>
struct Taps {
  int64_t index[4];    // offset of the tap's pixel in the (H, W) plane, or -1 when outside
  scalar_t w[4];       // bilinear weight of each tap
  scalar_t dwdx[4];    // derivative of each weight with respect to x
  scalar_t dwdy[4];    // ... and y
};

template <typename scalar_t>
Taps<scalar_t> bilinear_taps(scalar_t x, scalar_t y, int64_t H, int64_t W) {
  Taps<scalar_t> t;
  const scalar_t fx = std::floor(x), fy = std::floor(y);
  const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
  const scalar_t ax = x - fx, ay = y - fy;  // fractional parts
  const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1};
  const int64_t ys[4] = {y0, y0, y0 + 1, y0 + 1};
  const scalar_t wx[4] = {1 - ax, ax, 1 - ax, ax};
  const scalar_t wy[4] = {1 - ay, 1 - ay, ay, ay};
  const scalar_t sx[4] = {-1, 1, -1, 1};  // d wx / dx
  const scalar_t sy[4] = {-1, -1, 1, 1};  // d wy / dy
  for (int k = 0; k < 4; ++k) {
    const bool inside = xs[k] >= 0 && xs[k] < W && ys[k] >= 0 && ys[k] < H;
    t.index[k] = inside ? ys[k] * W + xs[k] : -1;
    t.w[k] = wx[k] * wy[k];
    t.dwdx[k] = sx[k] * wy[k];
    t.dwdy[k] = wx[k] * sy[k];
  }
  return t;
}

constexpr int64_t TILE = 64;  // keypoints whose samples are gathered and projected together

// Gathers the bilinear samples of keypoints [first, first + count) into rows of `samples`
// (count, M * C), sample m of a keypoint in columns [m * C, (m + 1) * C).
template <typename scalar_t>
void gather_tile(const scalar_t* F, const scalar_t* P, int64_t first, int64_t count, int64_t N, int64_t M,
                 int64_t H, int64_t W, int64_t C, scalar_t* samples) {
  std::fill(samples, samples + count * M * C, scalar_t(0));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t bn = first + i;
    const scalar_t* plane = F + (bn / N) * H * W * C;
    for (int64_t m = 0; m < M; ++m) {
      const scalar_t* p = P + (bn * M + m) * 2;
      const Taps<scalar_t> t = bilinear_taps(p[0], p[1], H, W);
      scalar_t* row = samples + (i * M + m) * C;
      for (int k = 0; k < 4; ++k) {
        if (t.index[k] < 0) continue;
        const scalar_t* f = plane + t.index[k] * C;
        for (int64_t c = 0; c < C; ++c) row[c] += t.w[k] * f[c];
      }
    }
  }
}

// Forward: per tile of keypoints, gather the samples into a small buffer that stays in cache and
// project them with one matrix product, out[tile] = samples (T, M*C) x weight (M*C, D).
template <typename scalar_t>
void forward_impl(const at::Tensor& feat, const at::Tensor& pos, const at::Tensor& weight, at::Tensor& out) {
  const int64_t B = feat.size(0), H = feat.size(1), W = feat.size(2), C = feat.size(3);
  const int64_t N = pos.size(1), M = pos.size(2), D = weight.size(2);
  const int64_t total = B * N, tiles = (total + TILE - 1) / TILE;
  const scalar_t* F = feat.data_ptr<scalar_t>();
  const scalar_t* P = pos.data_ptr<scalar_t>();
  const at::Tensor matrix = weight.view({M * C, D});
  at::Tensor rows = out.view({total, D});

  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    at::Tensor samples = at::empty({TILE, M * C}, feat.options());
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t first = tile * TILE, count = std::min(TILE, total - first);
      gather_tile(F, P, first, count, N, M, H, W, C, samples.data_ptr<scalar_t>());
      rows.narrow(0, first, count).addmm_(samples.narrow(0, 0, count), matrix);
    }
  });
}

// Backward: per tile, d samples = grad_out x weight^T and d weight += samples^T x grad_out (matrix
// products), then the bilinear taps scatter d samples into the feature map and give d positions.
// Scatters collide between keypoints, so each thread accumulates into its own buffers.
template <typename scalar_t>
void backward_impl(const at::Tensor& grad_out, const at::Tensor& feat, const at::Tensor& pos,
                   const at::Tensor& weight, at::Tensor& grad_feat, at::Tensor& grad_pos,
                   at::Tensor& grad_weight) {
  const int64_t B = feat.size(0), H = feat.size(1), W = feat.size(2), C = feat.size(3);
  const int64_t N = pos.size(1), M = pos.size(2), D = weight.size(2);
  const int64_t total = B * N, tiles = (total + TILE - 1) / TILE;
  const scalar_t* F = feat.data_ptr<scalar_t>();
  const scalar_t* P = pos.data_ptr<scalar_t>();
  scalar_t* GP = grad_pos.data_ptr<scalar_t>();
  const at::Tensor matrix = weight.view({M * C, D});
  const at::Tensor grad_rows = grad_out.view({total, D});

  const int threads = at::get_num_threads();
  std::vector<at::Tensor> feat_buffers(threads), weight_buffers(threads);
  for (int i = 0; i < threads; ++i) {
    feat_buffers[i] = at::zeros_like(grad_feat);
    weight_buffers[i] = at::zeros({M * C, D}, weight.options());
  }

  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    const int thread = at::get_thread_num();
    scalar_t* GF = feat_buffers[thread].data_ptr<scalar_t>();
    at::Tensor samples = at::empty({TILE, M * C}, feat.options());
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t first = tile * TILE, count = std::min(TILE, total - first);
      gather_tile(F, P, first, count, N, M, H, W, C, samples.data_ptr<scalar_t>());
      const at::Tensor g = grad_rows.narrow(0, first, count);
      weight_buffers[thread].addmm_(samples.narrow(0, 0, count).t(), g);
      const at::Tensor back = g.mm(matrix.t()).contiguous();  // (count, M * C)
      const scalar_t* dS = back.data_ptr<scalar_t>();
      for (int64_t i = 0; i < count; ++i) {
        const int64_t bn = first + i;
        const scalar_t* plane = F + (bn / N) * H * W * C;
        scalar_t* grad_plane = GF + (bn / N) * H * W * C;
        for (int64_t m = 0; m < M; ++m) {
          const scalar_t* p = P + (bn * M + m) * 2;
          const Taps<scalar_t> t = bilinear_taps(p[0], p[1], H, W);
          const scalar_t* d = dS + (i * M + m) * C;
          scalar_t gx = 0, gy = 0;
          for (int k = 0; k < 4; ++k) {
            if (t.index[k] < 0) continue;
            const scalar_t* f = plane + t.index[k] * C;
            scalar_t* gf = grad_plane + t.index[k] * C;
            scalar_t dot = 0;
            for (int64_t c = 0; c < C; ++c) {
              gf[c] += t.w[k] * d[c];
              dot += f[c] * d[c];
            }
            gx += t.dwdx[k] * dot;
            gy += t.dwdy[k] * dot;
          }
          GP[(bn * M + m) * 2] = gx;
          GP[(bn * M + m) * 2 + 1] = gy;
        }
      }
    }
  });
  for (int i = 0; i < threads; ++i) {
    grad_feat.add_(feat_buffers[i]);
    grad_weight.view({M * C, D}).add_(weight_buffers[i]);
  }
}

void check_inputs(const at::Tensor& feat, const at::Tensor& pos, const at::Tensor& weight) {
  TORCH_CHECK(feat.device().is_cpu() && pos.device().is_cpu() && weight.device().is_cpu(),
              "sample_project: CPU tensors expected");
  TORCH_CHECK(feat.dim() == 4, "sample_project: feat must be (B, H, W, C)");
  TORCH_CHECK(pos.dim() == 4 && pos.size(3) == 2, "sample_project: pos must be (B, N, M, 2)");
  TORCH_CHECK(weight.dim() == 3, "sample_project: weight must be (M, C, D)");
  TORCH_CHECK(pos.size(0) == feat.size(0), "sample_project: batch sizes differ");
  TORCH_CHECK(weight.size(0) == pos.size(2) && weight.size(1) == feat.size(3),
              "sample_project: weight shape does not match (M, C)");
  TORCH_CHECK(feat.scalar_type() == pos.scalar_type() && feat.scalar_type() == weight.scalar_type(),
              "sample_project: dtypes differ");
}

at::Tensor forward(at::Tensor feat, at::Tensor pos, at::Tensor weight) {
  check_inputs(feat, pos, weight);
  feat = feat.contiguous();
  pos = pos.contiguous();
  weight = weight.contiguous();
  auto out = at::zeros({feat.size(0), pos.size(1), weight.size(2)}, feat.options());
  AT_DISPATCH_FLOATING_TYPES(feat.scalar_type(), "sample_project_forward",
                             [&] { forward_impl<scalar_t>(feat, pos, weight, out); });
  return out;
}

std::vector<at::Tensor> backward(at::Tensor grad_out, at::Tensor feat, at::Tensor pos, at::Tensor weight) {
  check_inputs(feat, pos, weight);
  grad_out = grad_out.contiguous();
  feat = feat.contiguous();
  pos = pos.contiguous();
  weight = weight.contiguous();
  auto grad_feat = at::zeros_like(feat);
  auto grad_pos = at::zeros_like(pos);
  auto grad_weight = at::zeros_like(weight);
  AT_DISPATCH_FLOATING_TYPES(feat.scalar_type(), "sample_project_backward", [&] {
    backward_impl<scalar_t>(grad_out, feat, pos, weight, grad_feat, grad_pos, grad_weight);
  });
  return {grad_feat, grad_pos, grad_weight};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused bilinear sampling and projection (CPU)");
  m.def("backward", &backward, "gradients of the fused sampling and projection (CPU)");
}

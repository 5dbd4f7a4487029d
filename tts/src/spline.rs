//! The monotonic rational-quadratic spline of the stochastic duration predictor's flows (Durkan et al., "Neural
//! Spline Flows"), unconstrained variant: inside `[-B, B]` a spline with `n` bins whose widths, heights and inner
//! knot derivatives come from the network, outside the identity (the outer knots' derivatives are 1).
//!
//! It runs on the CPU on plain `f32` slices: the inputs are one value per text token, and the bin search and
//! gathers have no cheap tensor form in candle. Sums that PyTorch accumulates in double (`cumsum`) are
//! accumulated in `f64` here too.

const MIN_BIN_WIDTH: f32 = 1e-3;
const MIN_BIN_HEIGHT: f32 = 1e-3;
const MIN_DERIVATIVE: f32 = 1e-3;

/// The knots of one spline.
struct Knots {
    /// `n + 1` knot positions on the input axis, from `-B` to `B`.
    xs: Vec<f32>,
    /// `n + 1` knot positions on the output axis.
    ys: Vec<f32>,
    /// `n + 1` derivatives at the knots.
    derivatives: Vec<f32>,
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// PyTorch's `softplus` (threshold 20).
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Cumulative knot positions from unnormalised bin sizes, as the reference builds them.
fn knot_positions(unnormalized: &[f32], min_size: f32, bound: f32) -> Vec<f32> {
    let n = unnormalized.len();
    let sizes = softmax(unnormalized);
    // Python works out 1 - min·n in double before the f32 tensor sees it
    let scale = (1.0 - f64::from(min_size) * n as f64) as f32;
    let mut out = Vec::with_capacity(n + 1);
    out.push(-bound);
    let mut acc = 0f64;
    for (i, s) in sizes.iter().enumerate() {
        acc += f64::from(min_size + scale * s);
        out.push(if i + 1 == n { bound } else { 2.0 * bound * acc as f32 - bound });
    }
    out
}

impl Knots {
    fn new(widths: &[f32], heights: &[f32], inner_derivatives: &[f32], bound: f32) -> Self {
        // the outer derivatives are set so that min_derivative + softplus(c) == 1
        let outer = ((1.0 - MIN_DERIVATIVE as f64).exp() - 1.0).ln() as f32;
        let derivatives = std::iter::once(outer)
            .chain(inner_derivatives.iter().copied())
            .chain(std::iter::once(outer))
            .map(|d| MIN_DERIVATIVE + softplus(d))
            .collect();
        Self {
            xs: knot_positions(widths, MIN_BIN_WIDTH, bound),
            ys: knot_positions(heights, MIN_BIN_HEIGHT, bound),
            derivatives,
        }
    }

    /// The bin of `v` on the given knot axis (the last knot nudged up by 1e-6, as the reference does).
    fn bin(knots: &[f32], v: f32) -> usize {
        let n = knots.len() - 1;
        let count = knots.iter().enumerate().filter(|&(i, &k)| v >= if i == n { k + 1e-6 } else { k }).count();
        count.saturating_sub(1).min(n - 1)
    }

    /// The bin's left knot, width, height, slope and the derivatives at its two ends.
    fn bin_params(&self, k: usize) -> (f32, f32, f32, f32, f32, f32, f32) {
        let width = self.xs[k + 1] - self.xs[k];
        let height = self.ys[k + 1] - self.ys[k];
        (self.xs[k], self.ys[k], width, height, height / width, self.derivatives[k], self.derivatives[k + 1])
    }
}

/// The spline's inverse at `y`; the parameters are the network's raw outputs (`n` widths, `n` heights, `n - 1`
/// derivatives), widths and heights already divided by √filter_channels.
pub fn inverse(y: f32, widths: &[f32], heights: &[f32], derivatives: &[f32], bound: f32) -> f32 {
    if !(-bound..=bound).contains(&y) {
        return y;
    }
    let knots = Knots::new(widths, heights, derivatives, bound);
    let (x0, y0, w, h, delta, d0, d1) = knots.bin_params(Knots::bin(&knots.ys, y));
    let i1 = d0 + d1 - 2.0 * delta;
    let i2 = y - y0;
    let i3 = i2 * i1;
    let a = h * (delta - d0) + i3;
    let b = h * d0 - i3;
    let c = -delta * i2;
    // Rounding can push a root-at-the-knot discriminant just below zero, where the reference raises instead.
    let discriminant = (b * b - 4.0 * a * c).max(0.0);
    let root = (2.0 * c) / (-b - discriminant.sqrt());
    root * w + x0
}

/// The spline at `x` (the training direction); used to test [`inverse`].
#[cfg(test)]
pub fn forward(x: f32, widths: &[f32], heights: &[f32], derivatives: &[f32], bound: f32) -> f32 {
    if !(-bound..=bound).contains(&x) {
        return x;
    }
    let knots = Knots::new(widths, heights, derivatives, bound);
    let (x0, y0, w, h, delta, d0, d1) = knots.bin_params(Knots::bin(&knots.xs, x));
    let theta = (x - x0) / w;
    let t1 = theta * (1.0 - theta);
    let numerator = h * (delta * theta * theta + d0 * t1);
    let denominator = delta + (d0 + d1 - 2.0 * delta) * t1;
    y0 + numerator / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_undoes_forward_and_tails_are_identity() {
        let widths = [0.3f32, -1.0, 2.0, 0.1, -0.4];
        let heights = [1.0f32, 0.2, -0.7, 0.0, 0.9];
        let derivs = [0.5f32, -2.0, 1.5, 0.0];
        for i in -60..=60 {
            let x = i as f32 / 10.0;
            let y = forward(x, &widths, &heights, &derivs, 5.0);
            let back = inverse(y, &widths, &heights, &derivs, 5.0);
            assert!((back - x).abs() < 1e-4, "x {x} y {y} back {back}");
            if x.abs() > 5.0 {
                assert_eq!(y, x);
            }
        }
    }

    #[test]
    fn knots_span_the_bound() {
        let k = Knots::new(&[0.0; 4], &[1.0, 2.0, 3.0, 4.0], &[0.0; 3], 5.0);
        assert_eq!((k.xs[0], k.xs[4]), (-5.0, 5.0));
        assert!((k.xs[2]).abs() < 1e-6);
        assert!(k.ys.windows(2).all(|w| w[1] > w[0]));
        assert!((k.derivatives[0] - 1.0).abs() < 1e-6);
    }
}

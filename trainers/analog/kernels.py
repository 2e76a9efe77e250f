"""Single-pass CPU kernels (numba) for the periphery of the fused analog simulator.

Each kernel does in one pass over memory what eager torch does in four to six (clip, divide,
divide, round, multiply, ...), with exactly the same float32 operations in the same order, so
results are bit-identical to the torch ops in ``fused.py`` (the tests check this). numba is used
because it installs as a wheel from PyPI and needs no compiler on the user's machine; compiled
kernels are cached on disk (``cache=True``), so only the first process on a machine compiles
(a few seconds). On CUDA, or where numba is missing, ``fused.py`` uses plain torch ops instead.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

f32 = np.float32


@nb.njit(parallel=True, cache=True)
def _quantise_input(x, rf, r, step, out):  # pragma: no cover - compiled
    """out = round(clip(x, +-rf) / r / step) * step (step <= 0: no quantisation)."""
    n, c, h, w = x.shape
    for i in nb.prange(n * c):
        a, b = i // c, i % c
        for j in range(h):
            for k in range(w):
                v = x[a, b, j, k]
                if v > rf:
                    v = rf
                elif v < -rf:
                    v = -rf
                v = f32(v / r)
                if step > 0:
                    v = f32(f32(np.rint(f32(v / step))) * step)
                out[a, b, j, k] = v


def quantise_input(x: torch.Tensor, rf: float, r: float, step: float | None) -> torch.Tensor:
    out = torch.empty(x.shape, dtype=x.dtype)
    _quantise_input(x.detach().numpy(), f32(rf), f32(r), f32(step or 0.0), out.numpy())
    return out


@nb.njit(parallel=True, cache=True)
def _adc_scale(a, noise, noise_std, step, bound, scale, bias, y, accumulate):  # pragma: no cover
    """In place: a = round((a + noise * noise_std[o]) / step) * step (not yet clipped);
    y (+)= clip(a, +-bound) * scale[o] + bias[o]."""
    n, o, h, w = a.shape
    with_noise = noise.shape[0] > 0
    for i in nb.prange(n * o):
        p, q = i // o, i % o
        s, b, sd = scale[q], bias[q], noise_std[q]
        for j in range(h):
            for k in range(w):
                v = a[p, q, j, k]
                if with_noise:
                    v = f32(v + f32(noise[p, q, j, k] * sd))
                if step > 0:
                    v = f32(f32(np.rint(f32(v / step))) * step)
                a[p, q, j, k] = v
                if v > bound:
                    v = bound
                elif v < -bound:
                    v = -bound
                v = f32(f32(v * s) + b)
                if accumulate:
                    y[p, q, j, k] = f32(y[p, q, j, k] + v)
                else:
                    y[p, q, j, k] = v


def adc_scale(a: torch.Tensor, noise: torch.Tensor | None, noise_std: torch.Tensor, step: float | None,
              bound: float, scale: torch.Tensor, bias: torch.Tensor, y: torch.Tensor, accumulate: bool) -> None:
    empty = np.zeros((0, 0, 0, 0), dtype=np.float32)
    _adc_scale(a.numpy(), empty if noise is None else noise.numpy(), noise_std.detach().numpy(), f32(step or 0.0),
               f32(bound), scale.detach().numpy(), bias.detach().numpy(), y.numpy(), accumulate)


# reductions may be reassociated (vectorised); no other float op changes
@nb.njit(parallel=True, cache=True, fastmath={"reassoc"})
def _out_backward(g, a, scale, bound, ga, p_sum):  # pragma: no cover
    """ga = g * scale[o] where |a| <= bound else 0; p_sum[o] = sum(g * clip(a, +-bound))."""
    n, o, h, w = g.shape
    part = np.zeros((n, o), dtype=np.float64)
    for i in nb.prange(n * o):
        p, q = i // o, i % o
        s = scale[q]
        acc = 0.0
        for j in range(h):
            for k in range(w):
                gv, av = g[p, q, j, k], a[p, q, j, k]
                if av > bound:
                    acc += gv * bound
                    ga[p, q, j, k] = 0.0
                elif av < -bound:
                    acc -= gv * bound
                    ga[p, q, j, k] = 0.0
                else:
                    acc += gv * av
                    ga[p, q, j, k] = f32(gv * s)
        part[p, q] = acc
    for q in range(o):
        t = 0.0
        for p in range(n):
            t += part[p, q]
        p_sum[q] = t


def out_backward(g: torch.Tensor, a: torch.Tensor, scale: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    ga = torch.empty(g.shape, dtype=g.dtype)
    p_sum = torch.empty(g.shape[1], dtype=torch.float64)
    _out_backward(g.contiguous().numpy(), a.numpy(), scale.detach().numpy(), f32(bound), ga.numpy(), p_sum.numpy())
    return ga, p_sum.to(g.dtype)


@nb.njit(parallel=True, cache=True, fastmath={"reassoc"})
def _input_backward(x, d_xq, rf, r, ga_cl, wt, mult, geo, cols, dx, write_dx, accumulate):  # pragma: no cover
    """Backward through clip + normalise of one tile's input, in one pass over the input.

    Writes (or adds) dx = d_xq / r, 0 where |x| > rf. Returns
    (sum(d_xq * clip(x)), clip term, unfolded copies of clipped pixels): the clip term sums, over
    every unfolded copy (kernel tap) of a pixel clipped at +rf, min(g, 0), minus max(g, 0) at -rf,
    g = <ga_cl[n, oh, ow, :], wt[c, ki, kj, :]> / r being that copy's gradient."""
    n, c, h, w = x.shape
    kh, kw, sh, sw, ph, pw, dh, dw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7]
    ho, wo, n_out = ga_cl.shape[1], ga_cl.shape[2], ga_cl.shape[3]
    c0, k0, k1 = cols[0], cols[1], cols[2]
    taps = kh * kw
    dots = np.zeros(n * c)
    clips = np.zeros(n * c)
    outs = np.zeros(n * c)
    for i in nb.prange(n * c):
        a, b = i // c, i % c
        dot, clip, outside = 0.0, 0.0, 0.0
        for j in range(h):
            for k in range(w):
                v, d = x[a, b, j, k], d_xq[a, b, j, k]
                gin = f32(d / r)
                if v >= rf or v <= -rf:
                    upper = v >= rf
                    dot += d * (rf if upper else -rf)
                    outside += mult[b, j, k]
                    if v > rf or v < -rf:
                        gin = f32(0.0)
                    for ki in range(kh):
                        th = j + ph - ki * dh
                        if th < 0 or th % sh != 0 or th // sh >= ho:
                            continue
                        oh = th // sh
                        for kj in range(kw):
                            col = (c0 + b) * taps + ki * kw + kj
                            if col < k0 or col >= k1:
                                continue
                            tw = k + pw - kj * dw
                            if tw < 0 or tw % sw != 0 or tw // sw >= wo:
                                continue
                            ow = tw // sw
                            s = f32(0.0)
                            for q in range(n_out):
                                s += ga_cl[a, oh, ow, q] * wt[b, ki, kj, q]
                            gtap = f32(s / r)
                            if upper:
                                if gtap < 0:
                                    clip += gtap
                            elif gtap > 0:
                                clip -= gtap
                else:
                    dot += d * v
                if write_dx:
                    if accumulate:
                        dx[a, b, j, k] = f32(dx[a, b, j, k] + gin)
                    else:
                        dx[a, b, j, k] = gin
        dots[i], clips[i], outs[i] = dot, clip, outside
    return dots.sum(), clips.sum(), outs.sum()


def input_backward(x: torch.Tensor, d_xq: torch.Tensor, rf: float, r: float, ga: torch.Tensor, kernel: torch.Tensor,
                   mult: torch.Tensor, geo: tuple[int, ...], cols: tuple[int, int, int], dx: torch.Tensor | None,
                   accumulate: bool) -> tuple[float, float, float]:
    ga_cl = ga.permute(0, 2, 3, 1).contiguous()
    wt = kernel.detach().permute(1, 2, 3, 0).contiguous()
    dx_np = dx.numpy() if dx is not None else np.zeros((1, 1, 1, 1), dtype=np.float32)
    return _input_backward(x.detach().numpy(), d_xq.numpy(), f32(rf), f32(r), ga_cl.numpy(), wt.numpy(),
                           mult.numpy(), np.array(geo, dtype=np.int64), np.array(cols, dtype=np.int64), dx_np,
                           dx is not None, accumulate)

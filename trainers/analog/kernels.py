"""Single-pass CPU kernels (numba) for the periphery of the fused analog simulator.

Each kernel does in one pass over memory what eager torch does in four to six (clip, divide,
divide, round, multiply, ...), with exactly the same float32 operations in the same order, so
results are bit-identical to the torch ops in ``fused.py`` (the tests check this). numba is used
because it installs as a wheel from PyPI and needs no compiler on the user's machine; compiled
kernels are cached on disk (``cache=True``), so only the first process on a machine compiles
(a few seconds). On CUDA, or where numba is missing, ``fused.py`` uses plain torch ops instead.

Threads: the kernels are serial and release the GIL; a batch is split into as many chunks as
torch has intra-op threads, run on a small pool of Python threads. numba's own ``parallel=True``
was measured 2x *slower* inside a training step: its OpenMP runtime (the system libgomp) and
torch's (a bundled libgomp) each keep their threads spinning after a parallel region, and on two
cores the two teams preempt each other. Python threads sleep when idle, so they do not.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np
import torch

f32 = np.float32


# -- Gaussian noise: a counter-based ziggurat ------------------------------------------------------
# torch's CPU normal_ is serial and cost ~20% of a fused step; this draws the same distribution
# (Marsaglia & Tsang's ziggurat, 128 layers, an exact method) in parallel inside the ADC pass.
# Element i of a call with seed s uses the stream splitmix64(s ^ i * golden + k * golden), k = 1,
# 2, ...: the draw depends on the seed and the element, not on the thread count.
def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m1, dn, vn = 2147483648.0, 3.442619855899, 9.91256303526217e-3
    tn = dn
    q = vn / np.exp(-0.5 * dn * dn)
    kn, wn, fn = np.zeros(128, np.int64), np.zeros(128), np.zeros(128)
    kn[0], kn[1] = int((dn / q) * m1), 0
    wn[0], wn[127] = q / m1, dn / m1
    fn[0], fn[127] = 1.0, np.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = np.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


_KN, _WN, _FN = _ziggurat_tables()
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(inline="always")
def _mix(z):  # pragma: no cover - compiled
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always")
def _uniform(state):  # pragma: no cover - compiled
    state += _GOLDEN
    return state, ((_mix(state) >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740993.0)


@nb.njit(inline="always")
def _normal(state, kn, wn, fn):  # pragma: no cover - compiled
    """One standard normal from the stream ``state`` (returns the advanced state and the draw)."""
    while True:
        state += _GOLDEN
        z = _mix(state)
        iz = np.int64(z & np.uint64(127))
        hz = np.int64(z >> np.uint64(32))
        if hz >= 2147483648:
            hz -= 4294967296
        if abs(hz) < kn[iz]:
            return state, hz * wn[iz]
        x = hz * wn[iz]
        if iz == 0:  # the tail beyond r = 3.442620
            while True:
                state, u1 = _uniform(state)
                state, u2 = _uniform(state)
                x = -np.log(u1) * 0.2904764
                y = -np.log(u2)
                if y + y >= x * x:
                    break
            return state, (3.442620 + x) if hz > 0 else (-3.442620 - x)
        state, u = _uniform(state)
        if fn[iz] + u * (fn[iz - 1] - fn[iz]) < np.exp(-0.5 * x * x):
            return state, x


@nb.njit(nogil=True, cache=True)
def _standard_normal(seed, out):  # pragma: no cover - compiled
    flat = out.reshape(-1)
    for i in range(flat.size):
        state = np.uint64(seed) ^ (np.uint64(i) * _GOLDEN)
        _, v = _normal(state, _KN, _WN, _FN)
        flat[i] = v


def standard_normal(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Standard normal draws (float32) from the counter-based ziggurat (for tests and plots)."""
    out = np.empty(shape, dtype=np.float32)
    _standard_normal(np.uint64(seed), out)
    return torch.from_numpy(out)


def draw_seed() -> int:
    """A 63-bit seed from torch's default generator, so ``torch.manual_seed`` fixes the noise."""
    return int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64).item())


# -- running a kernel over batch chunks ------------------------------------------------------------
_POOL: list[tuple[ThreadPoolExecutor, int]] = []   # (pool, its number of workers)
_POOL_LOCK = threading.Lock()


#: Below this many elements a kernel runs on the calling thread only: handing work to another
#: thread costs more than it saves (measured on a 2-core VM).
_MIN_PARALLEL = 1 << 19


def _chunks(n: int, elements: int) -> list[tuple[int, int]]:
    parts = max(1, min(n, torch.get_num_threads())) if elements >= _MIN_PARALLEL else 1
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i] < bounds[i + 1]]


def _run(fn, n: int, args_of, elements: int) -> list:
    """``fn(*args_of(n0, n1))`` over batch chunks, the first on this thread, the others on the pool;
    ``elements``: the size of the work (to run small calls on this thread alone)."""
    chunks = _chunks(n, elements)
    if len(chunks) == 1:
        return [fn(*args_of(*chunks[0]))]
    with _POOL_LOCK:
        if not _POOL or _POOL[0][1] < len(chunks) - 1:
            _POOL[:] = [(ThreadPoolExecutor(max_workers=len(chunks) - 1, thread_name_prefix="nasseg-analog"),
                         len(chunks) - 1)]
        pool = _POOL[0][0]
    futures = [pool.submit(fn, *args_of(*c)) for c in chunks[1:]]
    first = fn(*args_of(*chunks[0]))
    return [first] + [f.result() for f in futures]


# -- the kernels -------------------------------------------------------------------------------------
@nb.njit(nogil=True, cache=True)
def _quantise_input(x, rf, r, step, out, levels):  # pragma: no cover - compiled
    """out = round(clip(x, +-rf) / r / step) * step (step <= 0: no quantisation); the integer
    levels also go to ``levels`` (int8) unless it is empty (what the backward keeps)."""
    n, c, h, w = x.shape
    keep = levels.shape[0] > 0
    for a in range(n):
        for b in range(c):
            for j in range(h):
                for k in range(w):
                    v = x[a, b, j, k]
                    if v > rf:
                        v = rf
                    elif v < -rf:
                        v = -rf
                    v = f32(v / r)
                    if step > 0:
                        level = f32(np.rint(f32(v / step)))
                        v = f32(level * step)
                        if keep:
                            levels[a, b, j, k] = np.int8(level)
                    out[a, b, j, k] = v


def quantise_input(x: torch.Tensor, rf: float, r: float, step: float | None,
                   keep_levels: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """DAC input (float32) and, if ``keep_levels``, its integer levels as int8 (1 byte per
    element instead of 4 for the backward; the caller checks that the levels fit)."""
    out = torch.empty(x.shape, dtype=x.dtype)
    levels = torch.empty(x.shape, dtype=torch.int8) if keep_levels else torch.empty((0, 0, 0, 0), dtype=torch.int8)
    xn, on, ln = x.detach().numpy(), out.numpy(), levels.numpy()
    _run(_quantise_input, x.shape[0], lambda a, b: (xn[a:b], f32(rf), f32(r), f32(step or 0.0), on[a:b],
                                                    ln[a:b] if keep_levels else ln), x.numel())
    return out, (levels if keep_levels else None)


@nb.njit(nogil=True, cache=True)
def _noise_row(useed, base, z):  # pragma: no cover - compiled
    """Standard normals of elements base .. base + len(z) - 1 into ``z``: the ziggurat's fast
    path in a loop LLVM vectorises, then the ~3% rejected draws by the full method (same
    streams, so the numbers equal ``_normal``'s)."""
    for k in range(z.shape[0]):
        state = (useed ^ (np.uint64(base + k) * _GOLDEN)) + _GOLDEN
        r = _mix(state)
        iz = np.int64(r & np.uint64(127))
        hz = np.int64(np.int32(np.uint32(r >> np.uint64(32))))
        z[k] = hz * _WN[iz] if abs(hz) < _KN[iz] else np.nan
    for k in range(z.shape[0]):
        if np.isnan(z[k]):
            _, z[k] = _normal(useed ^ (np.uint64(base + k) * _GOLDEN), _KN, _WN, _FN)


@nb.njit(nogil=True, cache=True)
def _adc_scale(a, offset, noise_std, seed, step, bound, scale, bias, y, accumulate, levels):  # pragma: no cover
    """a = round((a + N(0, 1) * noise_std[o]) / step) * step (not yet clipped), kept in place or,
    if ``levels`` is not empty, as int16 levels (clipped to +-32767, past the bound anyway);
    y (+)= clip(a, +-bound) * scale[o] + bias[o]. No noise when ``seed < 0``; element i of the
    whole tensor (``offset`` = index of this chunk's first element) draws from stream i."""
    n, o, h, w = a.shape
    keep = levels.shape[0] > 0
    with_noise = seed >= 0
    useed = np.uint64(max(seed, 0))
    z = np.zeros(w)
    for p in range(n):
        for q in range(o):
            s, b, sd = scale[q], bias[q], noise_std[q]
            for j in range(h):
                if with_noise:
                    _noise_row(useed, offset + ((p * o + q) * h + j) * w, z)
                for k in range(w):
                    v = a[p, q, j, k]
                    if with_noise:
                        v = f32(v + f32(f32(z[k]) * sd))
                    if step > 0:
                        level = f32(np.rint(f32(v / step)))
                        v = f32(level * step)
                        if keep:
                            levels[p, q, j, k] = np.int16(min(max(level, f32(-32767.0)), f32(32767.0)))
                    if not keep:
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


def adc_scale(a: torch.Tensor, noisy: bool, noise_std: torch.Tensor, step: float | None,
              bound: float, scale: torch.Tensor, bias: torch.Tensor, y: torch.Tensor, accumulate: bool,
              keep_levels: bool) -> torch.Tensor | None:
    """See ``_adc_scale``; returns the int16 levels if ``keep_levels`` (``a`` is then garbage)."""
    levels = torch.empty(a.shape, dtype=torch.int16) if keep_levels else torch.empty((0, 0, 0, 0), dtype=torch.int16)
    an, yn, ln = a.numpy(), y.numpy(), levels.numpy()
    std, sc, bi = noise_std.detach().numpy(), scale.detach().numpy(), bias.detach().numpy()
    seed = draw_seed() if noisy else -1
    per_item = a[0].numel()
    _run(_adc_scale, a.shape[0], lambda i, j: (an[i:j], i * per_item, std, seed, f32(step or 0.0), f32(bound), sc,
                                               bi, yn[i:j], accumulate, ln[i:j] if keep_levels else ln), a.numel() * 8)
    return levels if keep_levels else None


# reductions may be reassociated (vectorised); no other float op changes
@nb.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _out_backward(g, a, levels, step, scale, bound, ga):  # pragma: no cover - compiled
    """ga = g * scale[o] where |a| <= bound else 0; returns sum(g * clip(a, +-bound)) per channel.
    ``a`` is read from its int16 ``levels`` (times ``step``) when ``levels`` is not empty."""
    n, o, h, w = g.shape
    from_levels = levels.shape[0] > 0
    p_sum = np.zeros(o)
    for p in range(n):
        for q in range(o):
            s = scale[q]
            acc = 0.0
            for j in range(h):
                for k in range(w):
                    gv = g[p, q, j, k]
                    av = f32(f32(levels[p, q, j, k]) * step) if from_levels else a[p, q, j, k]
                    if av > bound:
                        acc += gv * bound
                        ga[p, q, j, k] = 0.0
                    elif av < -bound:
                        acc -= gv * bound
                        ga[p, q, j, k] = 0.0
                    else:
                        acc += gv * av
                        ga[p, q, j, k] = f32(gv * s)
            p_sum[q] += acc
    return p_sum


def out_backward(g: torch.Tensor, a: torch.Tensor, step: float | None, scale: torch.Tensor,
                 bound: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ga NCHW for the conv backward, ga NHWC for the clip term's row gathers, sum(g * clip(a)));
    ``a`` is the ADC output, or its int16 levels."""
    ga = torch.empty(g.shape, dtype=g.dtype)
    from_levels = a.dtype == torch.int16
    empty_f, empty_l = np.zeros((0, 0, 0, 0), np.float32), np.zeros((0, 0, 0, 0), np.int16)
    an = a.numpy()
    gn, gan, sc = g.contiguous().numpy(), ga.numpy(), scale.detach().numpy()
    parts = _run(_out_backward, g.shape[0], lambda i, j: (gn[i:j], empty_f if from_levels else an[i:j],
                                                          an[i:j] if from_levels else empty_l, f32(step or 0.0), sc,
                                                          f32(bound), gan[i:j]), g.numel())
    return ga, ga.permute(0, 2, 3, 1).contiguous(), torch.from_numpy(np.sum(parts, axis=0)).to(g.dtype)


@nb.njit(inline="always")
def _tap_output(t, stride, size):  # pragma: no cover - compiled
    """The output row (or column) that sees input offset ``t`` (input index + padding - tap *
    dilation) through a kernel tap, or -1 if none does (before the start, between strides, past
    the end)."""
    if t < 0:
        return -1
    if stride == 1:
        o = t
    elif t % stride != 0:
        return -1
    else:
        o = t // stride
    return o if o < size else -1


@nb.njit(nogil=True, cache=True, fastmath={"reassoc"})
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
    dot, clip_up, clip_low, outside = 0.0, 0.0, 0.0, 0.0
    partial = k0 != c0 * taps or k1 != (c0 + c) * taps       # a channel straddles a tile edge
    for a in range(n):
        for b in range(c):
            for j in range(h):
                # pass 1 (vectorised): dx, sum(d_xq * clip(x)), number of clipped pixels in the row
                n_clipped = 0
                for k in range(w):
                    v, d = x[a, b, j, k], d_xq[a, b, j, k]
                    inside = v <= rf and v >= -rf
                    cv = min(max(v, -rf), rf)
                    dot += d * cv
                    n_clipped += 0 if v < rf and v > -rf else 1
                    if write_dx:
                        gin = f32(d / r) if inside else f32(0.0)
                        if accumulate:
                            dx[a, b, j, k] = f32(dx[a, b, j, k] + gin)
                        else:
                            dx[a, b, j, k] = gin
                if n_clipped == 0:
                    continue
                # pass 2: the clipped pixels' unfolded copies (clip term, decay gate count); the
                # sign of a copy's gradient is that of its dot product (r > 0), so the division by
                # r is done once on the sums
                for k in range(w):
                    v = x[a, b, j, k]
                    if v < rf and v > -rf:
                        continue
                    upper = v >= rf
                    outside += mult[b, j, k]
                    for ki in range(kh):
                        oh = _tap_output(j + ph - ki * dh, sh, ho)
                        if oh < 0:
                            continue
                        for kj in range(kw):
                            if partial:
                                col = (c0 + b) * taps + ki * kw + kj
                                if col < k0 or col >= k1:
                                    continue
                            ow = _tap_output(k + pw - kj * dw, sw, wo)
                            if ow < 0:
                                continue
                            s = f32(0.0)
                            for q in range(n_out):
                                s += ga_cl[a, oh, ow, q] * wt[b, ki, kj, q]
                            if upper:
                                if s < 0:
                                    clip_up += s
                            elif s > 0:
                                clip_low += s
    clip = clip_up / r - clip_low / r
    return np.array((dot, clip, outside))


def input_backward(x: torch.Tensor, d_xq: torch.Tensor, rf: float, r: float, ga_cl: torch.Tensor,
                   kernel: torch.Tensor, mult: torch.Tensor, geo: tuple[int, ...], cols: tuple[int, int, int],
                   dx: torch.Tensor | None, accumulate: bool) -> tuple[float, float, float]:
    """See ``_input_backward``; ``ga_cl`` is the ADC-input gradient in NHWC layout."""
    ga_cl = ga_cl.numpy()
    wt = kernel.detach().permute(1, 2, 3, 0).contiguous().numpy()
    xn, dn, mn = x.detach().numpy(), d_xq.numpy(), mult.numpy()
    dxn = dx.numpy() if dx is not None else np.zeros((x.shape[0], 1, 1, 1), dtype=np.float32)
    g, c = np.array(geo, dtype=np.int64), np.array(cols, dtype=np.int64)
    parts = _run(_input_backward, x.shape[0], lambda i, j: (xn[i:j], dn[i:j], f32(rf), f32(r), ga_cl[i:j], wt, mn, g,
                                                            c, dxn[i:j], dx is not None, accumulate), 4 * x.numel())
    dot, clip, outside = np.sum(parts, axis=0)
    return float(dot), float(clip), float(outside)


@nb.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _moments(x, mult):  # pragma: no cover - compiled
    """sum(x * m) and sum(x * x * m) with m broadcast over the batch (float64 accumulation)."""
    n, c, h, w = x.shape
    s1, s2 = 0.0, 0.0
    for a in range(n):
        for b in range(c):
            for j in range(h):
                for k in range(w):
                    v, m = np.float64(x[a, b, j, k]), np.float64(mult[b, j, k])
                    s1 += v * m
                    s2 += v * v * m
    return np.array((s1, s2))


def weighted_moments(x: torch.Tensor, mult: torch.Tensor) -> tuple[float, float]:
    """First and second moments of the unfolded input, from the folded one and its multiplicity."""
    xn, mn = x.detach().numpy(), mult.numpy()
    s1, s2 = np.sum(_run(_moments, x.shape[0], lambda i, j: (xn[i:j], mn), x.numel()), axis=0)
    return float(s1), float(s2)


def warm_up() -> None:
    """Compile every kernel for the array layouts training uses (contiguous, and a channel slice
    for tiles that start mid-tensor), so numba's on-disk cache is filled once, at install time,
    instead of in every fresh Ray worker of the first search."""
    for sliced in (False, True):
        x = torch.rand(2, 3, 5, 6) * 2 - 1
        if sliced:
            x = x[:, 1:]
        c = x.shape[1]
        mult = torch.ones(c, 5, 6)
        weighted_moments(x, mult)
        for keep in (False, True):
            xq, _ = quantise_input(x, 0.5, 0.5, 2 / 254, keep)
        a = torch.rand(2, 4, 5, 6)
        y = torch.empty(2, 5, 5, 6)[:, 1:] if sliced else torch.empty(2, 4, 5, 6)
        for keep in (False, True):
            levels = adc_scale(a.clone(), True, torch.ones(4), 0.1, 10.0, torch.ones(4), torch.zeros(4), y, sliced, keep)
        for kept in (a, levels):
            ga, ga_cl, _ = out_backward(torch.rand(2, 4, 5, 6), kept, 0.1, torch.ones(4), 10.0)
        dx = torch.zeros(2, c + 1, 5, 6)[:, 1:] if sliced else torch.zeros(2, c, 5, 6)
        for target in (dx, None):
            input_backward(x, xq, 0.5, 0.5, ga_cl, torch.rand(4, c, 3, 3), mult, (3, 3, 1, 1, 1, 1, 1, 1),
                           (0, 0, c * 9), target, sliced)


if __name__ == "__main__":
    warm_up()

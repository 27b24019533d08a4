"""k-means clustering: the blog's assign/adjust loop (Lloyd's algorithm) as GEMMs over row chunks.

Blog: "Clustering with K-Means" (2016-12-06). Assign every point to its nearest centre, move every
centre to the mean of its points, repeat until nothing moves. The blog's version loops over points
in Python; here one iteration is a few tensor operations per block of rows.

Semantics follow scikit-learn's ``KMeans(algorithm="lloyd")``: `tol` is relative to the mean
per-feature variance, a run stops when no label changes (strict convergence) or when the summed
squared centre shift is <= tol, a run that stops for any other reason ends with one more
assignment so that `labels_` match `cluster_centers_`, and empty clusters are re-seeded with the
points that are farthest from their centres.

How an iteration stays cheap (N points, d features, k clusters):

* Distances come from one GEMM per block of rows, ``||c||^2 - 2 x.c`` (``||x||^2`` is the same for
  every centre and is not needed to compare them). The data mean is subtracted from the centres
  and folded into the per-centre bias, so float32 keeps most of its precision when the data sit
  far from the origin, without a centred copy of X.
* The arg-min is the expensive part of a CPU Lloyd step after the GEMM (torch's ``min(dim)`` with
  indices is a scalar loop). Instead, each block puts +inf at every point's current centre and
  takes the vectorised row minimum over the other centres: a point whose current centre is still
  the nearest keeps its label (ties keep the current label); only the other points get an exact
  ``argmin``. After the first few iterations that is a small fraction of N.
* Most points need no distances at all once the centres settle (Hamerly, 2010): every point keeps
  an upper bound on the distance to its centre and a lower bound on the distance to every other
  one, both moved by how far the centres moved (triangle inequality). A point is skipped when the
  bounds prove that a full scan would keep its label, with a margin for the rounding of the
  float32 GEMM (``_Lloyd.margin``), so skipping changes no result. Only the other points are
  gathered into blocks for the GEMM; when that is most of a shard, the shard is scanned whole.
* Centre sums are kept in float64 and updated only for the points that moved (``index_add_``),
  which is exact up to float64 rounding and needs no pass over all N points.
* On CPU the rows are split into one shard per torch thread, each shard run by its own Python
  thread with single-threaded torch ops: one parallel region per step instead of an OpenMP
  fork/join for every small op.
* `inertia_` is computed once per run from exact differences ``sum ||x - c||^2``, as scikit-learn
  does; the GEMM expansion would lose float32 precision for tight clusters.

Memory beyond X itself (float32 X): per sample a label (8 bytes), the two bounds (8), the squared
norm (4) and a flag (1), plus up to 8 for the indices of the points that are scanned or move, 12
during k-means++ and 8 for the best run's labels when n_init > 1 -- at most about 45 bytes per
sample; per block of rows, a ``(chunk_size, k)`` distance block and ``(chunk_size, d)`` row copies
per thread. The N x k distance matrix is never formed. Measured on 10M x 16 float32 (610 MiB),
k = 64: peak extra resident memory 275 MiB with init="random", 270 MiB with k-means++. The default
`chunk_size` makes the distance block 2 MiB, which measured fastest on a 2-core EPYC (1 MiB L2
per core, 32 MiB L3).
"""

from __future__ import annotations

import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch

from mlrepro.classic._base import (
    BaseEstimator,
    ConvergenceWarning,
    check_array,
    check_n_features,
    resolve_device,
    torch_threads,
)
from mlrepro.errors import InputError

_BLOCK_BYTES = 2 << 20  # distance block per chunk of rows; 1-2 MiB measured best on a 2-core EPYC
# Streaming passes with no reuse (means, norms, k-means++) use longer blocks: fewer ops, and far
# fewer OpenMP fork/joins, which cost milliseconds each when the CPU is oversubscribed.
_STREAM_BYTES = 4 << 20
# Bounds are stored in the data's dtype; every update is rounded outwards by this factor.
_ROUND = 2.0**-20
# When more than this fraction of a shard's rows must be scanned, scan all of it in contiguous
# blocks: gathering rows costs a copy, and skipping a few saves little.
_DENSE_FRACTION = 0.5
_INITS = ("k-means++", "random")
_METRICS = ("euclidean", "cosine")


def auto_chunk_rows(n_samples: int, n_clusters: int, n_features: int = 1, itemsize: int = 4) -> int:
    """Rows per block so that the (rows, k) distances and (rows, d) row copies stay near
    `_BLOCK_BYTES` (at least 256 rows)."""
    rows = _BLOCK_BYTES // (max(n_clusters, n_features) * itemsize)
    return int(min(n_samples, max(256, rows)))


def _as_generator(random_state) -> np.random.Generator:
    """None, an int seed, a numpy Generator or a legacy RandomState -> a Generator."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise InputError(
            f"random_state must be None, an int or a numpy Generator; got {random_state!r}"
        ) from None


def _ieee_matmul(X: torch.Tensor) -> bool:
    """Whether matrix products on X round like IEEE arithmetic in X's dtype (the skip bounds
    rely on it); not so when TF32 or bfloat16 products were allowed for float32."""
    if X.dtype != torch.float32:
        return True
    if torch.get_float32_matmul_precision() != "highest":
        return False
    return not (X.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32)


def _ceil_div(a: int, b: int) -> int:
    return -(a // -b)


class _Pool:
    """Contiguous row ranges, one per thread (whole blocks each, so that every block keeps the
    same shape), and the threads that work on them. Each thread runs single-threaded torch ops:
    one parallel region per pass instead of an OpenMP fork/join for every small op (which costs
    milliseconds per op when the CPU is busy with other work)."""

    def __init__(self, n: int, chunk: int, n_threads: int):
        n_chunks = _ceil_div(n, chunk)
        n_threads = max(1, min(n_threads, n_chunks))
        per = _ceil_div(n_chunks, n_threads) * chunk
        self.ranges = [(lo, min(lo + per, n)) for lo in range(0, n, per)]
        self.executor = ThreadPoolExecutor(len(self.ranges)) if len(self.ranges) > 1 else None

    def run(self, tasks) -> list:
        """Call every zero-argument function in `tasks` (one per range), in parallel."""
        if self.executor is None:
            return [task() for task in tasks]
        futures = [self.executor.submit(task) for task in tasks]
        return [f.result() for f in futures]

    def map(self, fn, *args) -> list:
        """fn(lo, hi, *args) for every range, in parallel."""
        return self.run([lambda lo=lo, hi=hi: fn(lo, hi, *args) for lo, hi in self.ranges])

    def close(self):
        if self.executor is not None:
            self.executor.shutdown()


class _Rows:
    """X as the metric sees it, without storing a transformed copy.

    euclidean: the working space is X minus its mean (scikit-learn centres X too, for float32
    precision). The GEMM still reads raw X: with centred centres c', the shift folds into the
    per-centre bias, ||x - mu - c'||^2 = ||x - mu||^2 + (||c'||^2 + 2 mu.c') - 2 x.c'.
    cosine: the working space is X with rows scaled to unit length, done block by block.
    Centre sums are kept in float64 in "sum space": raw x (euclidean) or unit x (cosine).
    """

    def __init__(self, X: torch.Tensor, spherical: bool, chunk_rows: int, pool: _Pool):
        self.X = X
        self.n, self.d = X.shape
        self.chunk = chunk_rows
        self.stream = max(chunk_rows, min(self.n, _STREAM_BYTES // (self.d * X.element_size())))
        self.spherical = spherical
        self.pool = pool
        opts = {"dtype": X.dtype, "device": X.device}
        self.mean64 = torch.zeros(self.d, dtype=torch.float64, device=X.device)
        if spherical:
            self.scale = torch.empty(self.n, **opts)  # 1 / ||x||
            pool.map(self._inverse_norms)
            zero = (self.scale == torch.inf).nonzero()
            if zero.numel():
                raise InputError(
                    f"X row {int(zero[0, 0])} is all zeros; metric='cosine' needs rows of "
                    "nonzero length"
                )
        else:
            self.mean64 = sum(pool.map(self._column_sums)) / self.n
        # the shift is rounded to X's dtype once and used exactly everywhere
        self.shift = self.mean64.to(X.dtype)
        self.mean64 = self.shift.to(torch.float64)
        # ||x - mu||^2 per row (1 for cosine); their mean over rows and features is the mean
        # per-feature variance that scales tol
        self.sq_norms = torch.empty(self.n, **opts)
        self.mean_var = sum(pool.map(self._sq_norms)) / (self.n * self.d)

    def blocks(self, lo: int, hi: int, rows: int | None = None):
        """(start, stop) of consecutive blocks covering lo:hi (streaming-sized by default)."""
        rows = rows or self.stream
        return ((s, min(s + rows, hi)) for s in range(lo, hi, rows))

    def _inverse_norms(self, lo, hi):
        for s, e in self.blocks(lo, hi):
            torch.linalg.vector_norm(self.X[s:e], dim=1, out=self.scale[s:e]).reciprocal_()

    def _column_sums(self, lo, hi) -> torch.Tensor:
        total = torch.zeros(self.d, dtype=torch.float64, device=self.X.device)
        for s, e in self.blocks(lo, hi):
            total += self.X[s:e].sum(0)  # native-dtype block sums, float64 total
        return total

    def _sq_norms(self, lo, hi) -> float:
        buf = torch.empty(
            min(self.stream, hi - lo), self.d, dtype=self.X.dtype, device=self.X.device
        )
        for s, e in self.blocks(lo, hi):
            torch.sum(self.working_block(s, e, buf).square_(), 1, out=self.sq_norms[s:e])
        return float(self.sq_norms[lo:hi].sum(dtype=torch.float64))

    def working_block(self, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
        """Working-space rows start:stop, written into `out`."""
        out = out[: stop - start]
        if self.spherical:
            return torch.mul(self.X[start:stop], self.scale[start:stop, None], out=out)
        return torch.sub(self.X[start:stop], self.shift, out=out)

    def gemm_block(self, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
        """What the distance GEMM reads for rows start:stop (raw X needs no copy)."""
        return self.working_block(start, stop, out) if self.spherical else self.X[start:stop]

    def gemm_rows(self, index: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """What the distance GEMM reads for the rows in `index` (a gathered copy)."""
        if self.spherical:
            return torch.mul(self.X[index], self.scale[index, None], out=out)
        return torch.index_select(self.X, 0, index, out=out)

    def working_rows(self, index: torch.Tensor) -> torch.Tensor:
        return self.gemm_rows(index) if self.spherical else self.X[index] - self.shift

    def gemm_terms(self, centers: torch.Tensor):
        """(d, k) weights and (k,) bias: bias + x_gemm @ weights = ||w - c||^2 - ||w||^2 for
        the working-space row w of x (w = x - mu; for cosine mu = 0)."""
        c64 = centers.to(torch.float64)
        bias = (c64 * c64).sum(1) + 2.0 * (c64 @ self.mean64)
        return (-2.0 * centers).T.contiguous(), bias.to(centers.dtype)

    def to_working(self, centers: torch.Tensor) -> torch.Tensor:
        """Centres given in X's units -> the working space."""
        centers = centers.to(torch.float64)
        if self.spherical:
            return (centers / torch.linalg.vector_norm(centers, dim=1, keepdim=True)).to(
                self.X.dtype
            )
        return (centers - self.mean64).to(self.X.dtype)

    def to_user(self, centers: torch.Tensor) -> torch.Tensor:
        """Centres in the working space -> X's units, as float64."""
        return centers.to(torch.float64) + self.mean64

    def from_sums(self, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Working-space means (float64) of clusters with count > 0 (others: NaN rows)."""
        means = sums / counts[:, None].to(torch.float64)
        if self.spherical:
            return means / torch.linalg.vector_norm(means, dim=1, keepdim=True)
        return means - self.mean64


class _Shifts(NamedTuple):
    """How far every centre moved since the last assignment step (rounded up)."""

    each: torch.Tensor  # (k,)
    max: float


class _Shard:
    """A contiguous range of rows with its own buffers; shards run on separate threads."""

    def __init__(self, lloyd: _Lloyd, lo: int, hi: int):
        self.lloyd, self.lo, self.hi = lloyd, lo, hi
        rows, k, c = lloyd.rows, lloyd.k, lloyd.rows.chunk
        opts = {"dtype": rows.X.dtype, "device": rows.X.device}
        self.xbuf = torch.empty(c, rows.d, **opts)
        self.dbuf = torch.empty(c, k, **opts)
        self.flat = torch.empty(c, dtype=torch.int64, device=rows.X.device)
        self.offsets = torch.arange(c, device=rows.X.device) * k  # row starts in a (c, k) block
        self.sums = torch.empty(k, rows.d, dtype=torch.float64, device=rows.X.device)
        self.counts = torch.empty(k, dtype=torch.int64, device=rows.X.device)
        self.n_scanned = 0
        # Views for every block, made once: slicing costs ~1 us a view, and a scan does ~10 per
        # block while two threads share the interpreter lock.
        self.blocks = []
        for s in range(lo, hi, c):
            e = min(s + c, hi)
            m = e - s
            self.blocks.append(
                (s, e, None if rows.spherical else rows.X[s:e], self.dbuf[:m],
                 lloyd.labels[s:e], self.flat[:m], self.offsets[:m],
                 lloyd.upper[s:e], lloyd.lower[s:e], lloyd.moved[s:e])
            )  # fmt: skip

    def _gemm_input(self, s, e, x_view):
        return x_view if x_view is not None else self.lloyd.rows.working_block(s, e, self.xbuf)

    def assign_all(self, neg2ct, bias):
        """Exact arg-min for every row; float64 centre sums of the shard into self.sums."""
        L = self.lloyd
        self.sums.zero_()
        for s, e, x_view, dist, labels, _, _, upper, lower, _ in self.blocks:
            xb = self._gemm_input(s, e, x_view)
            torch.addmm(bias, xb, neg2ct, out=dist)  # (m, k)
            labels.copy_(L.argmin(dist, upper[:, None], lower))  # upper, lower: scratch here
            self.sums.index_add_(0, labels, xb.to(torch.float64))
        self.counts = torch.bincount(L.labels[self.lo : self.hi], minlength=L.k)
        L.upper[self.lo : self.hi] = torch.inf  # no bounds yet: the next step scans every row
        L.lower[self.lo : self.hi] = 0.0

    def prune(self, shifts: _Shifts, margin) -> int:
        """Flag (in `moved`) the rows whose label may change in this step (Hamerly, 2010);
        returns how many. Every row keeps an upper bound u on the distance to its centre and a
        lower bound l on the distance to any other centre; when centres move by s_j, u grows by
        s_label and l shrinks by max_j s_j. A row whose GEMM distances provably still rank its
        centre first (u^2 + 2E < l^2, E the rounding bound of one GEMM distance) would be left
        alone by a full scan, so it is not flagged."""
        L = self.lloyd
        a, b, c = margin
        n_flagged = 0
        for s, e in L.rows.blocks(self.lo, self.hi):  # streaming blocks: O(block) temporaries
            u, lw = L.upper[s:e], L.lower[s:e]
            torch.add(u, shifts.each[L.labels[s:e]], out=u).mul_(1 + _ROUND)
            lw.sub_(shifts.max).clamp_min_(0.0).mul_(1 - _ROUND)
            sqn = L.rows.sq_norms[s:e]
            test = torch.sqrt(sqn).mul_(b).add_(a).add_(sqn, alpha=c).addcmul_(u, u)  # u^2 + 2E
            flags = torch.ge(test.mul_(1 + 4 * _ROUND), lw.square(), out=L.moved[s:e])
            n_flagged += int(flags.sum())
        return n_flagged

    def _to_bounds(self, index, margin) -> None:
        """upper/lower at `index` (a slice or indices) hold raw GEMM values: the distance term
        at the own centre and the smallest at any other; turn them into bounds on distances."""
        a, b, c = margin
        L = self.lloyd
        sqn = L.rows.sq_norms[index]
        half_e = torch.sqrt(sqn).mul_(b / 2).add_(a / 2).add_(sqn, alpha=c / 2)
        u = L.upper[index].add_(sqn).add_(half_e).clamp_min_(0.0).sqrt_().mul_(1 + _ROUND)
        lw = L.lower[index].add_(sqn).sub_(half_e).clamp_min_(0.0).sqrt_().mul_(1 - _ROUND)
        if isinstance(index, slice):
            return  # the in-place ops above wrote through the views
        L.upper[index] = u
        L.lower[index] = lw

    def scan(self, neg2ct, bias, margin, candidates=None) -> torch.Tensor:
        """GEMM distances for every row, or only for the rows at `candidates` (indices):
        whether another centre is strictly nearer than the current one (ties keep the current
        label), and fresh bounds. Returns the indices of the rows flagged to move."""
        L, lo, hi = self.lloyd, self.lo, self.hi
        rows, c = L.rows, L.rows.chunk
        if candidates is None:
            for s, e, x_view, dist, labels, flat, offsets, cur, other, moved in self.blocks:
                torch.addmm(bias, self._gemm_input(s, e, x_view), neg2ct, out=dist)  # (m, k)
                torch.take(dist, torch.add(labels, offsets, out=flat), out=cur)  # current centre
                dist.view(-1).index_fill_(0, flat, torch.inf)
                torch.amin(dist, 1, out=other)  # nearest other centre
                torch.gt(cur, other, out=moved)
            self.n_scanned = hi - lo
            for s, e in rows.blocks(lo, hi):
                self._to_bounds(slice(s, e), margin)
            flagged = L.moved[lo:hi].nonzero()[:, 0].add_(lo)
        else:
            self.n_scanned = candidates.numel()
            parts = []
            for s in range(0, candidates.numel(), c):
                index = candidates[s : s + c]
                m = index.numel()
                xb = rows.gemm_rows(index, out=self.xbuf[:m])
                dist = torch.addmm(bias, xb, neg2ct, out=self.dbuf[:m])  # (m, k)
                flat = torch.add(L.labels[index], self.offsets[:m], out=self.flat[:m])
                cur = torch.take(dist, flat)
                dist.view(-1).index_fill_(0, flat, torch.inf)
                other = torch.amin(dist, 1)
                L.upper[index] = cur
                L.lower[index] = other
                self._to_bounds(index, margin)
                parts.append(index[cur > other])
            flagged = torch.cat(parts) if parts else candidates
        L.lower[flagged] = 0.0  # a row that moves is scanned again in the next step
        return flagged

    def step(self, neg2ct, bias, margin, shifts, track_sums: bool, exact_centers=None):
        """prune + scan + relabel (+ the exact squared distances to `exact_centers` for the
        inertia), all on this shard's rows, so shards never wait for each other in a step."""
        candidates = None
        if shifts is not None:
            n_flagged = self.prune(shifts, margin)
            if n_flagged <= _DENSE_FRACTION * (self.hi - self.lo):
                # few rows: gather them; most rows: contiguous blocks beat gathered rows
                candidates = self.lloyd.moved[self.lo : self.hi].nonzero()[:, 0].add_(self.lo)
        flagged = self.scan(neg2ct, bias, margin, candidates)
        n_changed = self.relabel(flagged, neg2ct, bias, track_sums)
        if exact_centers is None:
            return n_changed, None
        return n_changed, self.exact_sq_dist(exact_centers)

    def relabel(self, flagged, neg2ct, bias, track_sums: bool) -> int:
        """Exact arg-min for the rows `flagged` by `scan`; moved rows' sums go into self.sums
        (added to the new cluster, subtracted from the old). Returns how many labels changed."""
        rows, c, L = self.lloyd.rows, self.lloyd.rows.chunk, self.lloyd
        labels = L.labels
        self.sums.zero_()
        self.counts.zero_()
        n_changed = 0
        for s in range(0, flagged.numel(), c):
            index = flagged[s : s + c]
            xb = rows.gemm_rows(index)
            new = L.argmin(torch.addmm(bias, xb, neg2ct))
            old = labels[index]
            changed = new != old  # a recomputed near-tie can land back on the old centre
            if not bool(changed.all()):
                index, new, old, xb = index[changed], new[changed], old[changed], xb[changed]
            labels[index] = new
            n_changed += index.numel()
            if track_sums and index.numel():
                x64 = xb.to(torch.float64)
                self.sums.index_add_(0, new, x64)
                self.sums.index_add_(0, old, x64.neg_())
                self.counts += torch.bincount(new, minlength=L.k)
                self.counts -= torch.bincount(old, minlength=L.k)
        return n_changed

    def exact_sq_dist(self, centers_rows, out=None) -> float:
        """Sum over the shard of ||x - c_label||^2 from differences, not the GEMM expansion
        (which loses float32 precision when clusters are tight); per point into `out` if given."""
        total = 0.0
        for s, e, x_view, _, labels, _, _, _, _, _ in self.blocks:
            diff = centers_rows[labels]  # (m, d), a fresh tensor
            torch.sub(self._gemm_input(s, e, x_view), diff, out=diff).square_()
            d2 = diff.sum(1)  # (m,)
            total += float(d2.sum(dtype=torch.float64))
            if out is not None:
                out[s:e] = d2
        return total


class _Lloyd:
    """Per-fit state: the rows, per-sample buffers, and the shards (one per CPU thread)."""

    def __init__(self, rows: _Rows, n_clusters: int, use_bounds: bool = True):
        self.rows = rows
        self.pool = rows.pool
        self.k = n_clusters
        n = rows.n
        device = rows.X.device
        self.labels = torch.empty(n, dtype=torch.int64, device=device)
        # bounds on the distance to the own centre and to the nearest other one (see prune)
        self.upper = torch.empty(n, dtype=rows.X.dtype, device=device)
        self.lower = torch.empty(n, dtype=rows.X.dtype, device=device)
        self.moved = torch.empty(n, dtype=torch.bool, device=device)
        self.use_bounds = use_bounds
        self.assigned = None  # the centres of the last assignment step
        # 2^-j for the first assignment's arg-min trick; float32 holds them exactly for j <= 125
        self.powers = (
            torch.exp2(-torch.arange(n_clusters, dtype=rows.X.dtype, device=device))
            if n_clusters <= 125
            else None
        )
        self.shards = [_Shard(self, lo, hi) for lo, hi in self.pool.ranges]

    def argmin(self, dist, row_min=None, code=None) -> torch.Tensor:
        """First index of each row's minimum; overwrites `dist`. `row_min` (m, 1) receives the
        minimum. torch's min-with-index is a scalar loop; for k <= 125 this uses 3 vectorised
        passes instead: the row minimum, a 0/1 mask of where it is attained, and mask @ 2^-j,
        whose binary exponent is 1 - (first j attaining the minimum), ties included."""
        if self.powers is None:
            values, index = torch.min(dist, 1, keepdim=True)
            if row_min is not None:
                row_min.copy_(values)
            return index[:, 0]
        row_min = torch.amin(dist, 1, keepdim=True, out=row_min)
        hits = torch.eq(dist, row_min, out=dist)  # 0.0 / 1.0
        code = torch.mv(hits, self.powers, out=code)
        return 1 - torch.frexp(code).exponent.to(torch.int64)

    def margin(self, neg2ct, bias) -> tuple[float, float, float]:
        """(a, b, c) with 2E(x) = a + b ||w|| + c ||w||^2 >= twice the rounding error of one
        GEMM distance bias_j - 2 x.c_j plus that of ||w||^2 (w = x - mu, the working-space row).
        Standard bound: |error| <= gamma (|bias_j| + 2 ||x|| ||c_j|| + ||w||^2) with
        gamma = (d + 3) u, u the unit roundoff, ||x|| <= ||w|| + ||mu||; doubled for slack."""
        rows = self.rows
        u = torch.finfo(rows.X.dtype).eps / 2
        gamma = 2 * (rows.d + 3) * u
        c_max = float(torch.linalg.vector_norm(neg2ct.to(torch.float64), dim=0).max()) / 2
        b_max = float(bias.abs().max())
        mu = float(torch.linalg.vector_norm(rows.mean64))
        return (
            2 * gamma * (b_max + 2 * c_max * mu),
            2 * gamma * 2 * c_max,
            2 * gamma,
        )

    def _run(self, method: str, *args) -> list:
        return self.pool.run([lambda sh=sh: getattr(sh, method)(*args) for sh in self.shards])

    def assign_all(self, centers, sums, counts):
        """First assignment of a run: labels of every row, float64 centre sums and counts."""
        terms = self.rows.gemm_terms(centers)
        self._run("assign_all", *terms)
        sums.copy_(sum(sh.sums for sh in self.shards))
        counts.copy_(sum(sh.counts for sh in self.shards))
        self.assigned = centers

    def _shifts(self, centers) -> _Shifts | None:
        if not self.use_bounds or self.assigned is None:
            return None
        step = centers.to(torch.float64) - self.assigned.to(torch.float64)
        # rounded up so that the bounds stay bounds
        each = (torch.linalg.vector_norm(step, dim=1) * (1 + 4 * _ROUND)).to(centers.dtype)
        return _Shifts(each, float(each.max()))

    def reassign(self, centers, sums=None, counts=None, exact: bool = False):
        """Assignment step from the current labels; moved rows update `sums` and `counts`.
        Returns the number of changed labels and, if `exact`, the sum of squared distances."""
        terms = self.rows.gemm_terms(centers)
        shifts = self._shifts(centers)
        exact_centers = self._exact_centers(centers) if exact else None
        results = self._run(
            "step", *terms, self.margin(*terms), shifts, sums is not None, exact_centers
        )
        self.assigned = centers
        if sums is not None:
            for sh in self.shards:
                sums += sh.sums
                counts += sh.counts
        n_changed = sum(r[0] for r in results)
        return n_changed, (sum(r[1] for r in results) if exact else None)

    @property
    def n_scanned(self) -> int:
        """Rows whose distances to every centre the last step computed."""
        return sum(sh.n_scanned for sh in self.shards)

    def _exact_centers(self, centers):
        return self.rows.to_user(centers).to(self.rows.X.dtype)  # comparable to gemm rows

    def exact_sq_dist(self, centers, out=None) -> float:
        """Sum of ||x - c_label||^2 in the metric's space (per point into `out` if given)."""
        return sum(self._run("exact_sq_dist", self._exact_centers(centers), out))

    def to_inertia(self, sq_dist: float) -> float:
        return sq_dist / 2 if self.rows.spherical else sq_dist


def _new_centers(lloyd: _Lloyd, sums, counts, centers):
    """Means of the clusters; empty clusters take the farthest points (as scikit-learn does)."""
    rows = lloyd.rows
    empty = (counts == 0).nonzero()[:, 0]
    if empty.numel():
        sums, counts = sums.clone(), counts.clone()
        sq_dist = torch.empty(rows.n, dtype=rows.X.dtype, device=rows.X.device)
        lloyd.exact_sq_dist(centers, out=sq_dist)
        far = torch.topk(sq_dist, empty.numel()).indices
        x_far = rows.gemm_rows(far).to(torch.float64)  # sum space
        for j, f, x in zip(empty.tolist(), far.tolist(), x_far):
            old = int(lloyd.labels[f])
            sums[old] -= x
            counts[old] -= 1
            sums[j] = x
            counts[j] = 1
    means = rows.from_sums(sums, counts)
    keep = (counts == 0)[:, None] | ~torch.isfinite(means)
    return torch.where(keep, centers.to(torch.float64), means).to(centers.dtype)


def _lloyd_single(lloyd: _Lloyd, centers, max_iter, tol_abs, verbose):
    """One k-means run from `centers`: (centers, inertia, n_iter); labels in lloyd.labels."""
    rows, k = lloyd.rows, lloyd.k
    device = rows.X.device
    sums = torch.zeros(k, rows.d, dtype=torch.float64, device=device)
    counts = torch.zeros(k, dtype=torch.int64, device=device)
    strict = False
    for it in range(max_iter):
        if it == 0:
            lloyd.assign_all(centers, sums, counts)
        else:
            n_changed, _ = lloyd.reassign(centers, sums, counts)
        if verbose:
            inertia = lloyd.to_inertia(lloyd.exact_sq_dist(centers))
            scanned = rows.n if it == 0 else lloyd.n_scanned
        new = _new_centers(lloyd, sums, counts, centers)
        shift = float(((new.to(torch.float64) - centers.to(torch.float64)) ** 2).sum())
        if verbose:
            print(
                f"Iteration {it}, inertia {inertia:.6g}, centre shift {shift:.3g}, "
                f"rows scanned {scanned}"
            )
        centers = new
        if it > 0 and n_changed == 0:
            strict = True  # labels did not change: converged
            break
        if shift <= tol_abs:
            break
    if strict:
        sq_dist = lloyd.exact_sq_dist(centers)
    else:
        # one more assignment so that labels and inertia belong to the returned centres
        _, sq_dist = lloyd.reassign(centers, exact=True)
    return centers, lloyd.to_inertia(sq_dist), it + 1


def _kmeans_plusplus(rows: _Rows, k: int, rng: np.random.Generator) -> torch.Tensor:
    """Greedy k-means++ (Arthur & Vassilvitskii 2007, with 2 + log k candidates per centre as in
    scikit-learn): sample candidates with probability proportional to D(x)^2, the squared
    distance to the nearest centre so far, and keep the one that lowers the potential sum D^2
    most. Every pass over the rows runs on the row ranges in parallel. Returns (k, d) centres in
    the working space."""
    X, pool = rows.X, rows.pool
    n_trials = 2 + int(np.log(k))
    closest = torch.empty(rows.n, dtype=X.dtype, device=X.device)  # D(x)^2
    cumulative = torch.empty(rows.n, dtype=torch.float64, device=X.device)
    bufs = {lo: torch.empty(min(rows.stream, hi - lo), rows.d, dtype=X.dtype, device=X.device)
            for lo, hi in pool.ranges}  # fmt: skip

    def sq_dist_blocks(lo, hi, points):
        """(start, stop, squared distances (m, p) to `points`) over lo:hi."""
        neg2ct, bias = rows.gemm_terms(points)
        for s, e in rows.blocks(lo, hi):
            d2 = torch.addmm(bias, rows.gemm_block(s, e, bufs[lo]), neg2ct)  # (m, p)
            yield s, e, d2.add_(rows.sq_norms[s:e, None]).clamp_min_(0)

    def update(lo, hi, point, first):
        """closest = min(closest, D to `point`); cumulative sums of closest over the range."""
        for s, e, d2 in sq_dist_blocks(lo, hi, point):
            if first:
                closest[s:e] = d2[:, 0]
            else:
                torch.minimum(closest[s:e], d2[:, 0], out=closest[s:e])
        torch.cumsum(closest[lo:hi], 0, dtype=torch.float64, out=cumulative[lo:hi])
        return float(cumulative[hi - 1])

    def potentials(lo, hi, candidates):
        pots = torch.zeros(len(candidates), dtype=torch.float64, device=X.device)
        for s, e, d2 in sq_dist_blocks(lo, hi, candidates):
            pots += torch.minimum(d2, closest[s:e, None]).sum(0, dtype=torch.float64)
        return pots

    centers = torch.empty(k, rows.d, dtype=X.dtype, device=X.device)
    first = torch.tensor([int(rng.integers(rows.n))], device=X.device)
    centers[0] = rows.working_rows(first)[0]
    totals = pool.map(update, centers[:1], True)
    for j in range(1, k):
        # sample n_trials points with probability D(x)^2 / sum D^2 from the per-range cumsums
        offsets = np.cumsum([0.0, *totals])
        targets = rng.uniform(size=n_trials) * offsets[-1]
        cand = []
        for t in targets:
            r = min(int(np.searchsorted(offsets, t, side="right")) - 1, len(totals) - 1)
            lo, hi = pool.ranges[r]
            local = torch.tensor([t - offsets[r]], dtype=torch.float64, device=X.device)
            cand.append(min(lo + int(torch.searchsorted(cumulative[lo:hi], local)), hi - 1))
        cand_rows = rows.working_rows(torch.tensor(cand, device=X.device))  # (trials, d)
        pots = sum(pool.map(potentials, cand_rows))
        centers[j] = cand_rows[int(pots.argmin())]
        if j + 1 < k:
            totals = pool.map(update, centers[j : j + 1], False)
    return centers


class KMeans(BaseEstimator):
    """k-means clustering with Lloyd's algorithm on PyTorch tensors (CPU or GPU).

    Args:
        n_clusters: number of clusters k.
        init: "k-means++" (greedy, as scikit-learn), "random" (k distinct rows of X) or an array
            of shape (n_clusters, n_features) with the initial centres.
        n_init: runs from different initialisations; the lowest inertia wins. "auto" means 1 for
            "k-means++" and an array, 10 for "random" (scikit-learn >= 1.4).
        max_iter: iterations per run.
        tol: a run stops when the summed squared centre shift is <= tol * mean feature variance.
        metric: "euclidean", or "cosine" for spherical k-means (rows and centres of unit length;
            inertia is then the sum of cosine distances 1 - cos(x, centre)).
        random_state: None, an int seed, or a numpy Generator.
        device: torch device for the computation (default CPU).
        chunk_size: rows per block; None picks a block of about 1 MiB of distances.
        verbose: print the inertia of every iteration.

    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 0.0], [10.0, 2.0], [10.0, 4.0], [10.0, 0.0]])
    >>> km = KMeans(2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    >>> bool(km.predict([[0.0, 0.0]])[0] == km.labels_[0]), km.inertia_
    (True, 16.0)
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        metric="euclidean",
        random_state=None,
        device=None,
        chunk_size=None,
        verbose=False,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.metric = metric
        self.random_state = random_state
        self.device = device
        self.chunk_size = chunk_size
        self.verbose = verbose

    # --- validation ---

    def _check_params(self, n_samples: int, n_features: int):
        k = self.n_clusters
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise InputError(f"n_clusters must be a positive int; got {k!r}")
        if k > n_samples:
            raise InputError(f"n_clusters={k} is larger than the number of samples ({n_samples})")
        if self.metric not in _METRICS:
            raise InputError(f"metric must be one of {', '.join(_METRICS)}; got {self.metric!r}")
        for name in ("max_iter",):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be a positive int; got {value!r}")
        if not isinstance(self.tol, numbers.Real) or not self.tol >= 0:
            raise InputError(f"tol must be a number >= 0; got {self.tol!r}")
        if self.chunk_size is not None and (
            not isinstance(self.chunk_size, numbers.Integral) or self.chunk_size < 1
        ):
            raise InputError(f"chunk_size must be None or a positive int; got {self.chunk_size!r}")
        if isinstance(self.init, str):
            if self.init not in _INITS:
                raise InputError(
                    f"init must be one of {', '.join(_INITS)} or an array of shape "
                    f"(n_clusters, n_features); got {self.init!r}"
                )
            init_array = None
        else:
            init_array = check_array(self.init, "init")
            if tuple(init_array.shape) != (k, n_features):
                raise InputError(
                    f"init array must have shape (n_clusters, n_features) = ({k}, {n_features}); "
                    f"got {tuple(init_array.shape)}"
                )
            if self.metric == "cosine" and bool((init_array == 0).all(1).any()):
                raise InputError("init has an all-zero row; metric='cosine' needs nonzero centres")
        n_init = self.n_init
        if n_init == "auto":
            n_init = 10 if isinstance(self.init, str) and self.init == "random" else 1
        elif not isinstance(n_init, numbers.Integral) or isinstance(n_init, bool) or n_init < 1:
            raise InputError(f"n_init must be 'auto' or a positive int; got {n_init!r}")
        if init_array is not None and n_init != 1:
            warnings.warn(
                f"init is an array, so n_init={n_init} runs would be identical; doing one run",
                RuntimeWarning,
                stacklevel=3,
            )
            n_init = 1
        return init_array, int(n_init)

    # --- fitting ---

    def fit(self, X, y=None) -> KMeans:
        """Cluster `X` of shape (n_samples, n_features); `y` is ignored."""
        device = resolve_device(self.device)
        X = check_array(X, "X", device=device)
        n, d = X.shape
        init_array, n_init = self._check_params(n, d)
        rng = _as_generator(self.random_state)
        chunk = int(
            min(self.chunk_size or auto_chunk_rows(n, self.n_clusters, d, X.element_size()), n)
        )
        # One range of rows per torch thread, each worked on by its own Python thread with
        # single-threaded torch ops (set process-wide for the duration of the fit, then restored).
        n_threads = torch.get_num_threads() if device.type == "cpu" else 1
        pool = _Pool(n, chunk, n_threads)
        try:
            with torch_threads(1 if pool.executor is not None else n_threads):
                best = self._fit_runs(X, chunk, pool, init_array, n_init, rng)
        finally:
            pool.close()
        centers, inertia, n_iter, labels, rows = best
        self.cluster_centers_ = rows.to_user(centers).to(X.dtype).cpu().numpy()
        self.labels_ = labels.cpu().numpy()
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.n_features_in_ = d
        n_distinct = int(torch.bincount(labels, minlength=self.n_clusters).count_nonzero())
        if n_distinct < self.n_clusters:
            warnings.warn(
                f"only {n_distinct} distinct clusters found (n_clusters={self.n_clusters}); "
                "X may have fewer distinct points than clusters",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _fit_runs(self, X, chunk, pool, init_array, n_init, rng):
        """The n_init runs; returns (centers, inertia, n_iter, labels, rows) of the best."""
        rows = _Rows(X, self.metric == "cosine", chunk, pool)
        lloyd = _Lloyd(rows, self.n_clusters, use_bounds=_ieee_matmul(X))
        tol_abs = float(self.tol) * rows.mean_var
        best = None
        for _ in range(n_init):
            if init_array is not None:
                centers = rows.to_working(init_array.to(X.device))
            elif self.init == "random":
                index = torch.from_numpy(rng.choice(rows.n, self.n_clusters, replace=False))
                centers = rows.working_rows(index.to(X.device))
            else:
                centers = _kmeans_plusplus(rows, self.n_clusters, rng)
            result = _lloyd_single(lloyd, centers, self.max_iter, tol_abs, self.verbose)
            if best is None or result[1] < best[1]:
                labels = lloyd.labels.clone() if n_init > 1 else lloyd.labels
                best = (*result, labels, rows)
        return best

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit and return `labels_`."""
        return self.fit(X).labels_

    # --- using a fitted model ---

    def _blocks(self, X):
        """Validate X; yield (rows, centres, squared distances (m, k)) block by block, rows and
        centres shifted (and for cosine normalised) alike."""
        self._check_fitted("cluster_centers_")
        device = resolve_device(self.device)
        X = check_array(X, "X", device=device)
        check_n_features(X, self.n_features_in_)
        centers = torch.as_tensor(self.cluster_centers_, device=device)
        spherical = self.metric == "cosine"
        if spherical:
            centers = centers / torch.linalg.vector_norm(centers, dim=1, keepdim=True)
            shift = torch.zeros_like(centers[0])
        else:
            shift = centers.mean(0)  # distances don't change; float32 keeps its precision
        centers = (centers - shift).to(X.dtype)
        shift = shift.to(X.dtype)
        neg2ct, csq = (-2.0 * centers).T.contiguous(), (centers * centers).sum(1)
        chunk = self.chunk_size or auto_chunk_rows(*X.shape[:1], *centers.shape, X.element_size())
        for start in range(0, X.shape[0], chunk):
            xb = X[start : start + chunk] - shift
            if spherical:
                norms = torch.linalg.vector_norm(xb, dim=1, keepdim=True)
                if bool((norms == 0).any()):
                    raise InputError("X has an all-zero row; metric='cosine' needs nonzero rows")
                xb /= norms
            d2 = torch.addmm(csq, xb, neg2ct).add_((xb * xb).sum(1, keepdim=True))
            yield xb, centers, d2.clamp_min_(0)

    def predict(self, X) -> np.ndarray:
        """Index of the nearest centre for every row of `X`."""
        parts = [d2.argmin(1) for _, _, d2 in self._blocks(X)]
        return torch.cat(parts).cpu().numpy()

    def transform(self, X) -> np.ndarray:
        """Distances (n_samples, n_clusters) to every centre: Euclidean, or 1 - cos for cosine."""
        cosine = self.metric == "cosine"
        parts = [d2 / 2 if cosine else d2.sqrt_() for _, _, d2 in self._blocks(X)]
        return torch.cat(parts).cpu().numpy()

    def score(self, X, y=None) -> float:
        """Opposite of the inertia of `X` under the fitted centres (higher is better)."""
        total = 0.0
        for xb, centers, d2 in self._blocks(X):
            diff = xb - centers[d2.argmin(1)]  # exact differences, as for inertia_
            total += float((diff * diff).sum(1).sum(dtype=torch.float64))
        return -(total / 2 if self.metric == "cosine" else total)

"""Exact nearest-other-class distances, computed in memory-bounded chunks.

The quantities behind r-separation (Yang et al. 2020) are nearest-neighbour distances
restricted by label: for a query point, the distance to the closest reference point of
a *different* label, or the distance to the closest point of *each* class. They are
computed here exactly (every pair is measured, or, for ``'linf'``, proven unable to
lower a minimum), without ever building the full distance matrix: queries and
references are processed in square blocks whose size is derived from a byte budget
(``chunk_bytes``), so a 60,000 x 784 problem needs a few hundred MiB at most.

How each norm is computed
-------------------------
``'linf'``
    Exact search with certificates computed by matrix products. First, each query's
    running minimum starts from a few candidates: its nearest references in a
    16-dimensional principal-component projection (cheap, approximate), measured
    exactly. Then every block of pairs gets a certificate ``C = A @ B.T`` where
    ``A[q] = [q - lo >= t_q, hi - q >= t_q]`` (``t_q`` the query's running minimum,
    ``lo``/``hi`` the per-feature minimum/maximum of the references) and
    ``B[r] = [r == lo, r == hi]`` are 0/1 matrices: ``C[q, r] > 0`` means some feature
    has ``|q_j - r_j| >= t_q``, so the pair cannot lower ``t_q`` and is skipped. Only
    uncertified pairs are measured (by gathering, or with ``torch.cdist(p=inf)`` when
    most of a block is uncertified). The certificate compares exactly the floating-point
    differences the distance is made of, so no result changes. On image data (empty
    background, saturated strokes) nearly every pair of different digits is certified.
    Distances are computed in float32 when both inputs are float32 (then each is the
    correctly rounded true distance: float32 subtraction and ``abs``/``max`` are exact up
    to one final rounding) and in float64 otherwise.
``'l1'``
    ``torch.cdist(p=1)`` per block in float64 (summation error ~1e-13 relative).
``'l2'``
    The matrix-product identity ``|q|^2 + |r|^2 - 2 q.r`` in float32 on centred data
    (one GEMM per block), followed by an exact float64 re-check: every reference whose
    approximate squared distance lies within twice a rigorous float32 error bound of
    the running minimum is re-measured as ``sqrt(sum((q - r)^2))`` in float64. The
    true nearest point is always among the re-checked ones, so the result is the
    float64 brute-force value (duplicates give exactly 0), at GEMM speed.

For the training set against itself, only pairs of different labels count, so a point
is never its own neighbour; exact duplicates carrying different labels give distance 0.
For ``'l1'`` and ``'l2'`` symmetry is used: each unordered pair of training points is
measured once (for ``'linf'`` each point is a query, and a measured pair updates both).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from sklearn.utils.validation import check_array, column_or_1d
from tqdm.auto import tqdm

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "NORMS",
    "block_size",
    "class_distances",
    "nearest_other_class_distances",
]

NORMS = ("linf", "l2", "l1")
"""Supported norms: ``'linf'`` (Chebyshev), ``'l2'`` (Euclidean), ``'l1'`` (Manhattan)."""

DEFAULT_CHUNK_BYTES = 128 * 2**20
"""Default working-memory budget of one block (128 MiB)."""

# Worst-case bytes per (query, reference) pair of a block: the distance block (8), the
# same-label mask (1), candidate masks (3), a gathered threshold matrix (4) and the
# int64 indices of candidates (16).
_PAIR_BYTES = 32
# Bytes per feature of one loaded row: the gathered copy and its converted copies;
# for l_inf, the differences to the per-feature extremes and the 0/1 certificate rows.
_ROW_FEATURE_BYTES = 24
# Share of the budget kept for blocks; the rest bounds the exact re-check buffers.
_BLOCK_SHARE = 0.75
_U32 = 2.0**-24  # unit roundoff of float32
# l_inf search: candidates from a low-dimensional projection seed the running minima;
# a block whose uncertified share exceeds _DENSE_SHARE is finished densely by cdist.
_SEED_DIMS = 16
_SEED_CANDIDATES = 8
_SEED_SAMPLE = 2048
_DENSE_SHARE = 0.3
_GATHER_PAIRS = 256


def check_norm(norm):
    """Return ``norm`` if it is one of :data:`NORMS`, else raise ``ValueError``."""
    if not isinstance(norm, str) or norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")
    return norm


def check_chunk_bytes(chunk_bytes):
    """Return the byte budget: :data:`DEFAULT_CHUNK_BYTES` for ``None``, else an int >= 1."""
    if chunk_bytes is None:
        return DEFAULT_CHUNK_BYTES
    if (
        not isinstance(chunk_bytes, numbers.Integral)
        or isinstance(chunk_bytes, bool)
        or chunk_bytes < 1
    ):
        raise ValueError(f"chunk_bytes must be None or an integer >= 1, got {chunk_bytes!r}.")
    return int(chunk_bytes)


def block_size(n_features, chunk_bytes=None):
    """Rows per chunk so that one square block of distances fits the byte budget.

    A block holds ``s`` query rows, ``s`` reference rows and the ``s x s`` pairs
    between them; ``s`` is the largest integer with
    ``32 s^2 + 2 * 24 * n_features * s <= 0.75 * chunk_bytes`` (worst-case bytes per
    pair and per loaded feature), and at least 1. The remaining quarter of the budget
    bounds the exact re-check of ``'l2'`` candidates.

    Parameters
    ----------
    n_features : int
        Number of features of each point.
    chunk_bytes : int or None, default=None
        Working-memory budget in bytes; ``None`` means :data:`DEFAULT_CHUNK_BYTES`.

    Returns
    -------
    s : int
        Rows per query chunk and per reference chunk.

    Examples
    --------
    >>> from sklearn_robust.separation._distances import block_size
    >>> s = block_size(784)
    >>> s
    1280
    >>> 32 * s**2 + 48 * 784 * s <= 0.75 * 128 * 2**20
    True
    >>> block_size(784, chunk_bytes=1)
    1
    """
    budget = _BLOCK_SHARE * check_chunk_bytes(chunk_bytes)
    a = float(_PAIR_BYTES)
    b = 2.0 * _ROW_FEATURE_BYTES * max(int(n_features), 1)
    s = int((-b + math.sqrt(b * b + 4.0 * a * budget)) / (2.0 * a))
    while s > 1 and a * s * s + b * s > budget:  # guard against rounding up
        s -= 1
    return max(1, s)


def _validate_points(X, name):
    X = check_array(X, dtype=[np.float64, np.float32], order="C", allow_nd=True, input_name=name)
    return X.reshape(X.shape[0], -1)


def _validate_labels(y, n, name):
    y = column_or_1d(y, warn=True)
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} labels for {n} points.")
    return y


def encode_labels(y_ref, y=None):
    """Integer codes of labels: ``classes`` sorted, ``y_ref`` and ``y`` as indices into it.

    Labels of ``y`` absent from ``y_ref`` get code ``-1``: every reference class is
    "another class" for them.
    """
    classes, ref_codes = np.unique(y_ref, return_inverse=True)
    ref_codes = ref_codes.reshape(-1).astype(np.int64)
    if y is None:
        return classes, ref_codes, None
    try:
        pos = np.searchsorted(classes, y)
        pos = np.clip(pos, 0, len(classes) - 1)
        known = classes[pos] == y
    except TypeError as exc:
        raise ValueError(
            f"labels of the queries ({np.asarray(y).dtype}) cannot be compared with the "
            f"reference labels ({classes.dtype})."
        ) from exc
    codes = np.where(np.asarray(known, dtype=bool), pos, -1).astype(np.int64)
    return classes, ref_codes, codes


class _Engine:
    """Blocks of distances between rows of ``XQ`` and rows of ``XR``, and their minima.

    ``XQ`` and ``XR`` are validated C-ordered float arrays; ``XR`` may be ``XQ``. Running
    minima live in float64 numpy arrays: ``approx`` (what the blocks say; squared for
    ``'l2'``) and, for ``'l2'``, ``exact`` (float64 re-measured distances).
    """

    def __init__(self, XQ, XR, norm, chunk_bytes, device):
        self.XQ, self.XR, self.norm = XQ, XR, check_norm(norm)
        budget = check_chunk_bytes(chunk_bytes)
        self.device = torch.device("cpu" if device is None else device)
        self.n_features = n_features = XQ.shape[1]
        self.size = block_size(n_features, budget)
        # Exact re-check buffers: pairs x features x (two gathers + difference) x 8 bytes.
        self.recheck_rows = max(1, int((1 - _BLOCK_SHARE) * budget) // (24 * n_features))
        self.recheck = norm == "l2"
        self.center = None
        if norm == "linf":
            both32 = XQ.dtype == np.float32 and XR.dtype == np.float32
            self.work = np.float32 if both32 else np.float64
        elif norm == "l1":
            self.work = np.float64
        else:
            self.work = np.float32
            self.center = self._column_mean(XR)
            sq_q = self._centred_sq_norms(XQ)
            sq_r = sq_q if XR is XQ else self._centred_sq_norms(XR)
            # Rigorous float32 bound on the error of |q|^2 + |r|^2 - 2 q.r (conversion,
            # two norms, one dot product of length p; any summation order), times 2.
            const = (4.0 * n_features + 32.0) * _U32
            self.band_q = 2.0 * const * (sq_q + sq_r.max())
            self.band_r = 2.0 * const * (sq_r + sq_q.max())

    # ------------------------------------------------------------------ helpers
    def chunks(self, n):
        return [(start, min(start + self.size, n)) for start in range(0, n, self.size)]

    def _column_mean(self, X):
        total = np.zeros(X.shape[1])
        for start, stop in self.chunks(X.shape[0]):
            total += X[start:stop].sum(axis=0, dtype=np.float64)
        return total / X.shape[0]

    def _column_std(self, X):
        mean = self._column_mean(X)
        total = np.zeros(X.shape[1])
        for start, stop in self.chunks(X.shape[0]):
            total += np.square(np.subtract(X[start:stop], mean, dtype=np.float64)).sum(axis=0)
        return np.sqrt(total / X.shape[0])

    def _centred_sq_norms(self, X):
        out = np.empty(X.shape[0])
        for start, stop in self.chunks(X.shape[0]):
            diff = np.subtract(X[start:stop], self.center, dtype=np.float64)
            out[start:stop] = np.einsum("ij,ij->i", diff, diff)
        return out

    def tensor(self, a, dtype=None):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, dtype=dtype)

    @staticmethod
    def numpy(t):
        return t.to("cpu").numpy().astype(np.float64, copy=False)

    def load(self, X, idx):
        """Rows ``idx`` of ``X`` as a fresh tensor of the working dtype on the device."""
        block = X[idx]
        if self.center is not None:
            block = np.subtract(block, self.center, dtype=np.float64)
        return torch.from_numpy(np.ascontiguousarray(block, dtype=self.work)).to(self.device)

    def same_label(self, q_codes, r_codes):
        """Boolean block of pairs with equal labels, or None when there is none.

        Both code runs are sorted, so disjoint ranges share no label.
        """
        if q_codes[0] > r_codes[-1] or r_codes[0] > q_codes[-1]:
            return None
        return self.tensor(q_codes)[:, None] == self.tensor(r_codes)[None, :]

    def exact(self, iq, ir):
        """Float64 distances between rows ``iq`` of ``XQ`` and rows ``ir`` of ``XR``."""
        out = np.empty(len(iq))
        step = self.recheck_rows
        for start in range(0, len(iq), step):
            stop = start + step
            diff = np.subtract(self.XQ[iq[start:stop]], self.XR[ir[start:stop]], dtype=np.float64)
            if self.norm == "l2":
                out[start:stop] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            elif self.norm == "l1":
                out[start:stop] = np.abs(diff).sum(axis=1)
            else:
                out[start:stop] = np.abs(diff).max(axis=1, initial=0.0)
        return out

    # ------------------------------------------------------------------ one block
    def block(self, Qc, Rc, same):
        """Distances of a block; pairs with equal labels are +inf."""
        if self.norm == "linf":
            D = torch.cdist(Qc, Rc, p=float("inf"))
        elif self.norm == "l1":
            D = torch.cdist(Qc, Rc, p=1.0)
        else:
            D = Qc @ Rc.T
            D.mul_(-2.0)
            D.add_((Qc * Qc).sum(1)[:, None])
            D.add_((Rc * Rc).sum(1)[None, :])
            D.clamp_(min=0.0)
        if same is not None:
            D.masked_fill_(same, float("inf"))
        return D

    # ------------------------------------------------------------------ folding minima
    def fold_other(self, D, qi, ri, approx, exact, symmetric):
        """Fold a block into per-point minima (rows, and columns when symmetric)."""
        approx[qi] = np.minimum(approx[qi], self.numpy(D.amin(dim=1)))
        if symmetric:
            approx[ri] = np.minimum(approx[ri], self.numpy(D.amin(dim=0)))
        if not self.recheck:
            return
        mask = D <= self.tensor(_band_threshold(approx[qi], self.band_q[qi]), D.dtype)[:, None]
        if symmetric:
            thr_r = _band_threshold(approx[ri], self.band_r[ri])
            mask |= D <= self.tensor(thr_r, D.dtype)[None, :]
        ci, cj = (t.to("cpu").numpy() for t in torch.nonzero(mask, as_tuple=True))
        del mask
        vals = self.exact(qi[ci], ri[cj])
        np.minimum.at(exact, qi[ci], vals)
        if symmetric:
            np.minimum.at(exact, ri[cj], vals)

    def fold_matrix(self, D, qi, ri, r_codes, approx, exact):
        """Fold a block into the (n_queries, n_classes) minima; columns sorted by class."""
        cuts = np.flatnonzero(np.diff(r_codes)) + 1
        for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(r_codes)], strict=True):
            c = r_codes[start]
            approx[qi, c] = np.minimum(approx[qi, c], self.numpy(D[:, start:stop].amin(dim=1)))
        if not self.recheck:
            return
        thr = _band_threshold(approx[qi], self.band_q[qi][:, None])
        mask = D <= self.tensor(thr, D.dtype)[:, self.tensor(r_codes)]
        ci, cj = (t.to("cpu").numpy() for t in torch.nonzero(mask, as_tuple=True))
        del mask
        vals = self.exact(qi[ci], ri[cj])
        np.minimum.at(exact, (qi[ci], r_codes[cj]), vals)


def _band_threshold(approx, band):
    """Re-check threshold ``approx + band``; -1 (no candidate) where approx is inf."""
    with np.errstate(invalid="ignore"):
        thr = approx + band
    return np.where(np.isfinite(thr), thr, -1.0)


def _tail_max(Q, R, ci, cj):
    """``max_j |Q[ci, j] - R[cj, j]|`` for listed pairs, in ``Q``'s dtype.

    Pairs are processed in fixed batches (not per sample), small enough that the two
    gathered batches stay in cache.
    """
    out = np.empty(len(ci), dtype=Q.dtype)
    m = _GATHER_PAIRS
    A = np.empty((m, Q.shape[1]), dtype=Q.dtype)
    B = np.empty_like(A)
    for start in range(0, len(ci), m):
        stop = min(start + m, len(ci))
        a, b = A[: stop - start], B[: stop - start]
        np.take(Q, ci[start:stop], axis=0, out=a)
        if R.dtype == Q.dtype:
            np.take(R, cj[start:stop], axis=0, out=b)
        else:
            b[...] = R[cj[start:stop]]
        np.subtract(a, b, out=a)
        np.abs(a, out=a)
        a.max(axis=1, out=out[start:stop], initial=0)
    return out


def _count_products(A, B):
    """``A @ B`` for 0/1 (boolean) matrices, as exact integer counts.

    int8 products with int32 accumulation (``torch._int_mm``, several times faster than
    float32 on CPUs with VNNI) where available, else float32 (exact below 2**24).
    Only ``== 0`` is ever tested, which no rounding could change anyway.
    """
    int_mm = getattr(torch, "_int_mm", None)
    m, k = A.shape
    n = B.shape[1]
    if int_mm is not None and m > 16 and n >= 8 and n % 8 == 0 and k % 8 == 0:
        try:
            return int_mm(A.to(torch.int8), B.to(torch.int8))
        except RuntimeError:  # pragma: no cover - shape or device not supported
            pass
    return A.float() @ B.float()


class _LinfIndex:
    """What the l_inf search needs of the references, computed once.

    ``lo``/``hi``: per-feature minimum and maximum of ``XR`` (the certificate levels);
    ``basis``/``center``: a principal-component projection fitted on a sample of
    ``XR``, and ``proj``, every reference projected (for candidate search only).
    """

    def __init__(self, engine):
        XR = engine.XR
        self.engine = engine
        lo = np.full(XR.shape[1], np.inf)
        hi = np.full(XR.shape[1], -np.inf)
        for start, stop in engine.chunks(XR.shape[0]):
            lo = np.minimum(lo, XR[start:stop].min(axis=0))
            hi = np.maximum(hi, XR[start:stop].max(axis=0))
        self.lo = engine.tensor(lo.astype(engine.work))
        self.hi = engine.tensor(hi.astype(engine.work))
        rng = np.random.default_rng(0)
        n = XR.shape[0]
        sample = np.sort(rng.choice(n, size=min(n, _SEED_SAMPLE), replace=False))
        S = torch.from_numpy(np.asarray(XR[sample], dtype=np.float32))
        self.center = S.mean(dim=0)
        S = S - self.center
        dims = min(_SEED_DIMS, S.shape[0], S.shape[1])
        # The top principal subspace by a few subspace iterations (only the span matters:
        # distances within it do not depend on the basis chosen).
        cov = S.T @ S
        gen = torch.Generator().manual_seed(0)
        basis = torch.randn(S.shape[1], dims, generator=gen)
        for _ in range(6):
            basis, _ = torch.linalg.qr(cov @ basis)
        self.basis = basis.contiguous()
        self.proj = torch.cat([self.project(XR[a:b]) for a, b in engine.chunks(n)])
        self.sq = (self.proj * self.proj).sum(dim=1)

    def project(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        return (X - self.center) @ self.basis

    def candidates(self, Q, qc, ri_all, r_codes, exclude_same):
        """Up to ``_SEED_CANDIDATES`` nearest references per query in the projection.

        Returns ``(rows, refs)``: query rows within the block and reference row indices.
        """
        engine = self.engine
        Qp = self.project(Q)
        Qsq = (Qp * Qp).sum(dim=1)
        P, Psq = self.proj[ri_all], self.sq[ri_all]
        vals, idxs = [], []
        for b0, b1 in engine.chunks(len(ri_all)):
            D2 = Qp @ P[b0:b1].T
            D2.mul_(-2.0).add_(Qsq[:, None]).add_(Psq[None, b0:b1])
            if exclude_same:
                same = engine.same_label(qc, r_codes[b0:b1])
                if same is not None:
                    D2.masked_fill_(same.cpu(), float("inf"))
            v, j = D2.topk(min(_SEED_CANDIDATES, b1 - b0), dim=1, largest=False)
            vals.append(v)
            idxs.append(j + b0)
        V, J = torch.cat(vals, dim=1), torch.cat(idxs, dim=1)
        v, pick = V.topk(min(_SEED_CANDIDATES, V.shape[1]), dim=1, largest=False)
        J = J.gather(1, pick)
        rows, cols = torch.nonzero(torch.isfinite(v), as_tuple=True)
        return rows.numpy(), ri_all[J[rows, cols].numpy()]


def _linf_nearest(engine, index, qi_all, q_codes, ri_all, r_codes, best, *,
                  exclude_same, symmetric, bar=None):
    """Lower ``best`` to the exact l_inf distance of each query to its nearest reference.

    Queries are rows ``qi_all`` of ``XQ`` (sorted by their codes ``q_codes``),
    references rows ``ri_all`` of ``XR`` (sorted by ``r_codes``); with
    ``exclude_same`` pairs of equal codes do not count. ``best`` (float64, indexed by
    query row, +inf or an upper bound already) is updated in place; with ``symmetric``
    (queries and references are the same rows of the same array) the reference side
    of each measured pair is updated too. See the module docstring for the method.
    """
    XR, inf = engine.XR, float("inf")
    lo, hi = index.lo, index.hi
    r_chunks = engine.chunks(len(ri_all))

    def fold(rows, refs, qi, d):
        np.minimum.at(best, qi[rows], d)
        if symmetric:
            np.minimum.at(best, refs, d)

    for a0, a1 in engine.chunks(len(qi_all)):
        qi, qc = qi_all[a0:a1], q_codes[a0:a1]
        Qn = np.ascontiguousarray(engine.XQ[qi], dtype=engine.work)
        Qw = torch.from_numpy(Qn).to(engine.device)
        above_lo, below_hi = Qw - lo, hi - Qw  # exactly the differences to r == lo, hi
        # 1. Seed the running minima with the projection's nearest candidates.
        rows, refs = index.candidates(Qn, qc, ri_all, r_codes, exclude_same)
        if len(rows):
            fold(rows, refs, qi, _tail_max(Qn, XR, rows, refs).astype(np.float64))
        # 2. Certify blocks; measure only the uncertified pairs.
        for b0, b1 in r_chunks:
            rc = r_codes[b0:b1]
            if exclude_same and qc[0] == qc[-1] == rc[0] == rc[-1]:
                continue  # one class only: no pair counts
            ri = ri_all[b0:b1]
            Rw = engine.load(XR, ri)
            t = engine.tensor(best[qi], Qw.dtype)[:, None]
            cert_q = torch.cat([above_lo >= t, below_hi >= t], dim=1)
            cols = torch.nonzero(cert_q.any(dim=0)).squeeze(1)
            if cols.numel() % 8:  # repeated columns change no zero: pad to a multiple of 8
                cols = torch.cat([cols, cols[:1].expand(8 - cols.numel() % 8)])
            same = engine.same_label(qc, rc) if exclude_same else None
            if cols.numel():
                cert_r = torch.cat([Rw.T == lo[:, None], Rw.T == hi[:, None]], dim=0)
                need = _count_products(cert_q[:, cols], cert_r[cols]) == 0
            else:
                need = torch.ones(len(qi), len(ri), dtype=torch.bool, device=Qw.device)
            if same is not None:
                need &= ~same
            n_need = int(need.sum())
            if n_need == 0:
                continue
            if n_need > _DENSE_SHARE * need.numel():
                D = torch.cdist(Qw, Rw, p=inf)
                if same is not None:
                    D.masked_fill_(same, inf)
                best[qi] = np.minimum(best[qi], engine.numpy(D.amin(dim=1)))
                if symmetric:
                    best[ri] = np.minimum(best[ri], engine.numpy(D.amin(dim=0)))
                del D
            else:
                ci, cj = (t.cpu().numpy() for t in torch.nonzero(need, as_tuple=True))
                fold(ci, ri[cj], qi, _tail_max(Qn, XR, ci, ri[cj]).astype(np.float64))
            del need, same
        if bar is not None:
            bar.update(1)
    return best


def _bar(total, desc, verbose):
    return tqdm(total=total, desc=desc, disable=not verbose, leave=False)


def _other_symmetric(engine, codes, verbose=False):
    """Train-train: each point against the other points of different labels."""
    n = len(codes)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    if engine.norm == "linf":
        best = np.full(n, np.inf)
        with _bar(len(engine.chunks(n)), "train-train", verbose) as bar:
            return _linf_nearest(engine, _LinfIndex(engine), order, sorted_codes, order,
                                 sorted_codes, best, exclude_same=True, symmetric=True,
                                 bar=bar)
    approx = np.full(n, np.inf)
    exact = np.full(n, np.inf) if engine.recheck else None
    chunks = engine.chunks(n)
    for i, (a0, a1) in enumerate(tqdm(chunks, desc="train-train", disable=not verbose,
                                      leave=False)):
        qi, qc = order[a0:a1], sorted_codes[a0:a1]
        Qc = engine.load(engine.XQ, qi)
        for b0, b1 in chunks[i:]:
            rc = sorted_codes[b0:b1]
            if qc[0] == qc[-1] == rc[0] == rc[-1]:
                continue  # one class only: no pair counts
            ri = order[b0:b1]
            Rc = Qc if b0 == a0 else engine.load(engine.XR, ri)
            D = engine.block(Qc, Rc, engine.same_label(qc, rc))
            engine.fold_other(D, qi, ri, approx, exact, symmetric=True)
            del D
    return exact if engine.recheck else approx


def _other_cross(engine, q_codes, r_codes, verbose=False):
    """Test-train: each query against the references of a different label."""
    q_order = np.argsort(q_codes, kind="stable")
    r_order = np.argsort(r_codes, kind="stable")
    q_sorted, r_sorted = q_codes[q_order], r_codes[r_order]
    n = len(q_codes)
    if engine.norm == "linf":
        best = np.full(n, np.inf)
        with _bar(len(engine.chunks(n)), "test-train", verbose) as bar:
            return _linf_nearest(engine, _LinfIndex(engine), q_order, q_sorted, r_order,
                                 r_sorted, best, exclude_same=True, symmetric=False,
                                 bar=bar)
    approx = np.full(n, np.inf)
    exact = np.full(n, np.inf) if engine.recheck else None
    r_chunks = engine.chunks(len(r_codes))
    for a0, a1 in tqdm(engine.chunks(n), desc="test-train", disable=not verbose,
                       leave=False):
        qi, qc = q_order[a0:a1], q_sorted[a0:a1]
        Qc = engine.load(engine.XQ, qi)
        for b0, b1 in r_chunks:
            rc = r_sorted[b0:b1]
            if qc[0] == qc[-1] == rc[0] == rc[-1]:
                continue
            ri = r_order[b0:b1]
            D = engine.block(Qc, engine.load(engine.XR, ri), engine.same_label(qc, rc))
            engine.fold_other(D, qi, ri, approx, exact, symmetric=False)
            del D
    return exact if engine.recheck else approx


def _class_matrix(engine, r_codes, n_classes, verbose=False):
    """Each query against every class: the (n_queries, n_classes) minima."""
    r_order = np.argsort(r_codes, kind="stable")
    r_sorted = r_codes[r_order]
    n = engine.XQ.shape[0]
    if engine.norm == "linf":
        best = np.full((n_classes, n), np.inf)  # one contiguous row per class
        index = _LinfIndex(engine)
        qi_all, q_codes = np.arange(n), np.zeros(n, dtype=np.int64)
        with _bar(n_classes * len(engine.chunks(n)), "per class", verbose) as bar:
            for c in range(n_classes):
                ri = r_order[r_sorted == c]
                if len(ri):
                    _linf_nearest(engine, index, qi_all, q_codes, ri, r_codes[ri], best[c],
                                  exclude_same=False, symmetric=False, bar=bar)
        return np.ascontiguousarray(best.T)
    approx = np.full((n, n_classes), np.inf)
    exact = np.full((n, n_classes), np.inf) if engine.recheck else None
    r_chunks = engine.chunks(len(r_codes))
    for a0, a1 in tqdm(engine.chunks(n), desc="per class", disable=not verbose,
                       leave=False):
        qi = np.arange(a0, a1)
        Qc = engine.load(engine.XQ, qi)
        for b0, b1 in r_chunks:
            ri, rc = r_order[b0:b1], r_sorted[b0:b1]
            D = engine.block(Qc, engine.load(engine.XR, ri), None)
            engine.fold_matrix(D, qi, ri, rc, approx, exact)
            del D
    return exact if engine.recheck else approx


def nearest_other_class_distances(
    X, y, X_ref=None, y_ref=None, *, norm="linf", chunk_bytes=None, device=None
):
    """Exact distance from each point to the nearest reference point of another label.

    Without references, the training set is measured against itself (Yang et al.'s
    "Train-Train" separation): only pairs with different labels count, so a point is
    never its own neighbour, and duplicates with different labels give 0. With
    references (``X_ref``, ``y_ref``), each row of ``X`` is measured against them
    ("Test-Train"); a query whose label does not occur in ``y_ref`` has every
    reference as "another label".

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Query points; images ``(n, ...)`` are flattened to ``(n, d)``. float32 input is
        kept as float32, anything else becomes float64. No NaN or inf.
    y : array-like of shape (n_samples,)
        Labels of ``X``.
    X_ref : array-like of shape (n_ref, n_features), default=None
        Reference points; ``None`` measures ``X`` against itself.
    y_ref : array-like of shape (n_ref,), default=None
        Labels of ``X_ref``; required with ``X_ref``.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Distance.
    chunk_bytes : int or None, default=None
        Working-memory budget of one block in bytes (see :func:`block_size`);
        ``None`` means 128 MiB.
    device : str, torch.device or None, default=None
        Where blocks are computed (``None``: CPU).

    Returns
    -------
    distances : ndarray of shape (n_samples,), float64
        ``distances[i] = min{ ||X[i] - X_ref[j]|| : y_ref[j] != y[i] }``.

    Raises
    ------
    ValueError
        Unknown norm, NaN or inf in the data, inconsistent lengths or feature counts,
        or no reference point with another label (e.g. one class only).

    References
    ----------
    .. [1] Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov, K. Chaudhuri,
       "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    Two points per class on a line:

    >>> from sklearn_robust.separation._distances import nearest_other_class_distances
    >>> X, y = [[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1]
    >>> nearest_other_class_distances(X, y)
    array([3., 2., 2., 3.])
    >>> nearest_other_class_distances([[2.5], [-1.0]], [0, 1], X, y, norm="l2")
    array([0.5, 2. ])
    """
    check_norm(norm)
    X = _validate_points(X, "X")
    y = _validate_labels(y, X.shape[0], "y")
    if X_ref is None:
        if y_ref is not None:
            raise ValueError("y_ref was given without X_ref.")
        classes, codes, _ = encode_labels(y)
        if len(classes) < 2:
            raise ValueError(
                f"need at least 2 classes to measure separation, got {len(classes)} class."
            )
        return train_train(X, codes, norm=norm, chunk_bytes=chunk_bytes, device=device)
    if y_ref is None:
        raise ValueError("X_ref was given without y_ref.")
    X_ref = _validate_points(X_ref, "X_ref")
    y_ref = _validate_labels(y_ref, X_ref.shape[0], "y_ref")
    if X_ref.shape[1] != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but X_ref has {X_ref.shape[1]}.")
    classes, r_codes, q_codes = encode_labels(y_ref, y)
    if len(classes) < 2 and np.any(q_codes == 0):
        raise ValueError("some queries have no reference point of another label.")
    return test_train(X, q_codes, X_ref, r_codes, norm=norm, chunk_bytes=chunk_bytes, device=device)


def train_train(X, codes, *, norm="linf", chunk_bytes=None, device=None, verbose=False):
    """Array-level train-train distances: ``X`` validated, ``codes`` integer labels."""
    return _other_symmetric(_Engine(X, X, norm, chunk_bytes, device), codes, verbose)


def test_train(X, q_codes, X_ref, r_codes, *, norm="linf", chunk_bytes=None, device=None,
               verbose=False):
    """Array-level test-train distances (query code -1: label absent from the references)."""
    return _other_cross(_Engine(X, X_ref, norm, chunk_bytes, device), q_codes, r_codes,
                        verbose)


def class_matrix(X, X_ref, r_codes, n_classes, *, norm="linf", chunk_bytes=None, device=None,
                 verbose=False):
    """Array-level per-class distances, columns indexed by the codes ``0..n_classes-1``."""
    engine = _Engine(X, X_ref, norm, chunk_bytes, device)
    return _class_matrix(engine, r_codes, n_classes, verbose)


def class_distances(X, X_ref, y_ref, *, norm="linf", chunk_bytes=None, device=None):
    """Exact distance from each point to the nearest reference point of each class.

    Row ``i`` is ``(dist(X[i], X_ref[y_ref == c]) for c in classes)``, the function
    ``r * f(x)`` of Yang et al.'s constructive proof: ``classes[argmin]`` is the
    classifier that is astute with radius ``r`` when the classes are ``2r``-separated.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Query points; images are flattened. No NaN or inf.
    X_ref : array-like of shape (n_ref, n_features)
        Reference points.
    y_ref : array-like of shape (n_ref,)
        Labels of the reference points.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Distance.
    chunk_bytes : int or None, default=None
        Working-memory budget of one block in bytes; ``None`` means 128 MiB.
    device : str, torch.device or None, default=None
        Where blocks are computed (``None``: CPU).

    Returns
    -------
    distances : ndarray of shape (n_samples, n_classes), float64
        Columns ordered as ``np.unique(y_ref)``.

    References
    ----------
    .. [1] Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov, K. Chaudhuri,
       "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    >>> from sklearn_robust.separation._distances import class_distances
    >>> X_ref, y_ref = [[0.0], [1.0], [3.0], [4.0]], ["a", "a", "b", "b"]
    >>> class_distances([[2.0], [5.0]], X_ref, y_ref, norm="l1")
    array([[1., 1.],
           [4., 1.]])
    """
    check_norm(norm)
    X = _validate_points(X, "X")
    X_ref = _validate_points(X_ref, "X_ref")
    y_ref = _validate_labels(y_ref, X_ref.shape[0], "y_ref")
    if X_ref.shape[1] != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but X_ref has {X_ref.shape[1]}.")
    classes, r_codes, _ = encode_labels(y_ref)
    return class_matrix(
        X, X_ref, r_codes, len(classes), norm=norm, chunk_bytes=chunk_bytes, device=device
    )

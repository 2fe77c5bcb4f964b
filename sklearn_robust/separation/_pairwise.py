"""The l1 and l2 engines, on scikit-learn's ``pairwise_distances_chunked``.

The references are cut into tiles of rows (so that a float64 copy of one tile fits the
budget: SciPy converts its inputs to float64); scikit-learn chunks the queries against
each tile within ``working_memory`` and hands each block to a ``reduce_func`` that folds
it into the running minima. For the training set against itself only the tiles on and
above the diagonal are measured, and a block updates both its rows and its columns.

``'l1'``
    scikit-learn's ``'manhattan'`` (SciPy's ``cityblock``) in float64: summation error
    ~1e-13 relative.
``'l2'``
    scikit-learn's squared ``'euclidean'``, the matrix-product identity
    ``|q|^2 + |r|^2 - 2 q.r`` (one GEMM per block), followed by an exact float64
    re-check: every reference whose approximate squared distance lies within twice a
    rigorous error bound of the running minimum is re-measured as
    ``sqrt(sum((q - r)^2))`` in float64. The true nearest point is always among the
    re-checked ones (the running minimum never exceeds its approximate distance plus
    the bound), so the result is the float64 brute-force value (duplicates give
    exactly 0), at GEMM speed.
"""

from functools import partial

import numpy as np
from sklearn.metrics import pairwise_distances_chunked

from ._validation import BLOCK_SHARE, PAIR_BYTES

__all__ = ["PairwiseSearch"]

_U32 = 2.0**-24  # unit roundoff of float32
_U64 = 2.0**-53  # unit roundoff of float64
# The training set against itself: tiles on the diagonal are measured whole, so with
# k tiles a side the work is (1 + 1/k) / 2 of the full matrix.
_SYMMETRIC_TILES = 8
_MIN_TILE = 64
_METRIC = {"l1": ("manhattan", {}), "l2": ("euclidean", {"squared": True})}


def _band_threshold(approx, band):
    """Re-check threshold ``approx + band``; -1 (no candidate) where approx is inf."""
    with np.errstate(invalid="ignore"):
        thr = approx + band
    return np.where(np.isfinite(thr), thr, -1.0)


class PairwiseSearch:
    """Exact l1/l2 nearest distances between rows of ``XQ`` and rows of ``XR``.

    ``XQ`` and ``XR`` are validated C-ordered float arrays (``XR`` may be ``XQ``).
    Running minima live in float64 arrays: ``approx`` (what the blocks say; squared
    for ``'l2'``) and, for ``'l2'``, ``exact`` (float64 re-measured distances).
    """

    def __init__(self, XQ, XR, norm, chunk_bytes):
        self.XQ, self.XR, self.norm = XQ, XR, norm
        self.metric, self.metric_kw = _METRIC[norm]
        n_features = XQ.shape[1]
        share = BLOCK_SHARE * chunk_bytes / 2  # half for a tile's float64 copy
        self.tile = max(1, int(share) // (8 * n_features))
        self.pair_memory = share * 8 / PAIR_BYTES  # scikit-learn counts 8 bytes a pair
        # Exact re-check buffers: pairs x features x (two gathers + difference) x 8 bytes.
        self.recheck_rows = max(1, int((1 - BLOCK_SHARE) * chunk_bytes) // (24 * n_features))
        self.recheck = norm == "l2"
        if self.recheck:
            sq_q = self._sq_norms(XQ)
            sq_r = sq_q if XR is XQ else self._sq_norms(XR)
            # Rigorous bound on the error of |q|^2 + |r|^2 - 2 q.r (two norms, one dot
            # product of length p, any summation order, a final rounding to float32 when
            # an input is float32), times 2.
            low32 = np.float32 in (XQ.dtype, XR.dtype)
            const = (4.0 * n_features + 32.0) * (_U32 if low32 else _U64)
            self.band_q = 2.0 * const * (sq_q + sq_r.max())
            self.band_r = 2.0 * const * (sq_r + sq_q.max())

    # ------------------------------------------------------------------ the two jobs
    def other(self, q_codes, r_codes, symmetric, bar):
        """Distance from each query to the nearest reference of another code."""
        fold = partial(self._fold_other, q_codes, r_codes, symmetric)
        return self._run(fold, (len(q_codes),), symmetric, bar)

    def per_class(self, r_codes, n_classes, bar):
        """The ``(n_queries, n_classes)`` distances to the nearest reference of each code."""
        fold = partial(self._fold_class, r_codes)
        return self._run(fold, (self.XQ.shape[0], n_classes), False, bar)

    # ------------------------------------------------------------------ the one loop
    def _run(self, fold, shape, symmetric, bar):
        """Fold every block of every tile; only tiles on and above the diagonal if
        ``symmetric``."""
        approx = np.full(shape, np.inf)
        exact = np.full(shape, np.inf) if self.recheck else None
        n_q, n_r = self.XQ.shape[0], self.XR.shape[0]
        tile = self.tile
        if symmetric:  # at least _SYMMETRIC_TILES tiles a side, so the triangle saves work
            tile = min(tile, max(_MIN_TILE, -(-n_q // _SYMMETRIC_TILES)))
        q_tiles = [(a, min(a + tile, n_q)) for a in range(0, n_q, tile)]
        r_tiles = [(b, min(b + tile, n_r)) for b in range(0, n_r, tile)]
        for i, (q0, q1) in enumerate(q_tiles):
            for r0, r1 in r_tiles[i:] if symmetric else r_tiles:
                reduce = partial(self._reduce, fold, q0, r0, r1, approx, exact, bar)
                blocks = pairwise_distances_chunked(
                    self.XQ[q0:q1], self.XR[r0:r1], reduce_func=reduce, metric=self.metric,
                    working_memory=max(self.pair_memory, 8 * (r1 - r0)) / 2**20,
                    **self.metric_kw,
                )
                for _ in blocks:  # the folds are the work; nothing is yielded
                    pass
        return exact if self.recheck else approx

    @staticmethod
    def _reduce(fold, q0, r0, r1, approx, exact, bar, D, start):
        rows = np.arange(q0 + start, q0 + start + D.shape[0])
        fold(D, rows, np.arange(r0, r1), approx, exact)
        bar.update(D.shape[0])

    # ------------------------------------------------------------------ folding minima
    def _fold_other(self, q_codes, r_codes, symmetric, D, qi, ri, approx, exact):
        """Fold a block into per-point minima (rows, and columns when symmetric)."""
        np.putmask(D, q_codes[qi][:, None] == r_codes[ri][None, :], np.inf)
        approx[qi] = np.minimum(approx[qi], D.min(axis=1))
        if symmetric:
            approx[ri] = np.minimum(approx[ri], D.min(axis=0))
        if not self.recheck:
            return
        mask = D <= _band_threshold(approx[qi], self.band_q[qi])[:, None]
        if symmetric:
            mask |= D <= _band_threshold(approx[ri], self.band_r[ri])[None, :]
        ci, cj = np.nonzero(mask)
        del mask
        vals = self._exact(qi[ci], ri[cj])
        np.minimum.at(exact, qi[ci], vals)
        if symmetric:
            np.minimum.at(exact, ri[cj], vals)

    def _fold_class(self, r_codes, D, qi, ri, approx, exact):
        """Fold a block into the ``(n_queries, n_classes)`` minima."""
        codes = r_codes[ri]
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        present = codes[order][starts]
        mins = np.minimum.reduceat(D[:, order], starts, axis=1)
        approx[qi[:, None], present] = np.minimum(approx[qi[:, None], present], mins)
        if not self.recheck:
            return
        thr = _band_threshold(approx[qi], self.band_q[qi][:, None])
        ci, cj = np.nonzero(D <= thr[:, codes])
        vals = self._exact(qi[ci], ri[cj])
        np.minimum.at(exact, (qi[ci], codes[cj]), vals)

    # ------------------------------------------------------------------ helpers
    def _sq_norms(self, X):
        out = np.empty(X.shape[0])
        for start in range(0, X.shape[0], self.recheck_rows):
            rows = X[start:start + self.recheck_rows].astype(np.float64)
            out[start:start + len(rows)] = np.einsum("ij,ij->i", rows, rows)
        return out

    def _exact(self, iq, ir):
        """Float64 l2 distances between rows ``iq`` of ``XQ`` and rows ``ir`` of ``XR``."""
        out = np.empty(len(iq))
        step = self.recheck_rows
        for start in range(0, len(iq), step):
            stop = start + step
            diff = np.subtract(self.XQ[iq[start:stop]], self.XR[ir[start:stop]],
                               dtype=np.float64)
            out[start:stop] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return out

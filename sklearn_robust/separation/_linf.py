"""The exact l_inf engine: a candidate index, then 0/1 certificates as int8 products.

First, each query's running minimum starts from a few candidates: its nearest
references in a 16-dimensional principal-component projection (cheap, approximate),
measured exactly. Then every block of pairs gets a certificate ``C = A @ B.T`` where
``A[q] = [q - lo >= t_q, hi - q >= t_q]`` (``t_q`` the query's running minimum,
``lo``/``hi`` the per-feature minimum/maximum of the references) and
``B[r] = [r == lo, r == hi]`` are 0/1 matrices: ``C[q, r] > 0`` means some feature has
``|q_j - r_j| >= t_q``, so the pair cannot lower ``t_q`` and is skipped. Only
uncertified pairs are measured (by gathering, or with ``torch.cdist(p=inf)`` when most
of a block is uncertified). The certificate compares exactly the floating-point
differences the distance is made of, so no result changes. On image data (empty
background, saturated strokes) nearly every pair of different digits is certified.

Distances are computed in float32 when both inputs are float32 (then each is the
correctly rounded true distance: float32 subtraction and ``abs``/``max`` are exact up to
one final rounding) and in float64 otherwise. For the training set against itself
each point is a query, and a measured pair updates both of its points.
"""

import functools
import time

import numpy as np
import torch

from ._validation import block_size

__all__ = ["LinfSearch"]

# Candidates from a low-dimensional projection seed the running minima; a block whose
# uncertified share exceeds _DENSE_SHARE is finished densely by cdist.
_SEED_DIMS = 16
_SEED_CANDIDATES = 8
_SEED_SAMPLE = 2048
_DENSE_SHARE = 0.3
_GATHER_PAIRS = 256
# The query side of a certificate is rebuilt once this share of its minima has dropped.
_REBUILD_SHARE = 0.1


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


@functools.cache
def _int8_is_faster(device_type):
    """Whether int8 products beat float32 ones here, measured once per process.

    ``torch._int_mm`` is several times faster than float32 on CPUs with VNNI and many
    times slower on CPUs without it (measured here: 5.2 s against 0.13 s for one
    1280 x 1568 x 1280 product on an AMD EPYC without VNNI), so the kernel is chosen by a
    small timing rather than assumed. Both give the same counts.
    """
    int_mm = getattr(torch, "_int_mm", None)
    if int_mm is None or device_type != "cpu":
        return int_mm is not None
    a = torch.ones(256, 512, dtype=torch.int8)
    b = torch.ones(512, 256, dtype=torch.int8)
    timings = {}
    for kind, run in (("int8", lambda: int_mm(a, b)),
                      ("float32", lambda: a.float() @ b.float())):
        try:
            run()  # warm-up
            start = time.perf_counter()
            for _ in range(3):
                run()
            timings[kind] = time.perf_counter() - start
        except RuntimeError:  # pragma: no cover - kernel not supported here
            timings[kind] = float("inf")
    return timings["int8"] < timings["float32"]


def _count_products(A, B):
    """``A @ B`` for 0/1 (boolean) matrices, as exact integer counts.

    int8 products with int32 accumulation (``torch._int_mm``) where they are faster
    (see :func:`_int8_is_faster`), else float32 (exact below 2**24). Only ``== 0`` is
    ever tested, which no rounding could change anyway.
    """
    m, k = A.shape
    n = B.shape[1]
    shapes_ok = m > 16 and n >= 8 and n % 8 == 0 and k % 8 == 0
    if shapes_ok and _int8_is_faster(A.device.type):
        try:
            return torch._int_mm(A.to(torch.int8), B.to(torch.int8))
        except RuntimeError:  # pragma: no cover - shape or device not supported
            pass
    return A.float() @ B.float()


class LinfSearch:
    """Exact l_inf nearest distances between rows of ``XQ`` and rows of ``XR``.

    ``XQ`` and ``XR`` are validated C-ordered float arrays (``XR`` may be ``XQ``).
    Building the search computes once what it needs of the references: ``lo``/``hi``,
    their per-feature minimum and maximum (the certificate levels), and a
    principal-component projection fitted on a sample of ``XR`` with every reference
    projected (for candidate search only).
    """

    def __init__(self, XQ, XR, chunk_bytes, device):
        self.XQ, self.XR = XQ, XR
        both32 = XQ.dtype == np.float32 and XR.dtype == np.float32
        self.work = np.float32 if both32 else np.float64
        self.device = torch.device("cpu" if device is None else device)
        self.size = block_size(XQ.shape[1], chunk_bytes)
        lo = np.full(XR.shape[1], np.inf)
        hi = np.full(XR.shape[1], -np.inf)
        for start, stop in self.chunks(XR.shape[0]):
            lo = np.minimum(lo, XR[start:stop].min(axis=0))
            hi = np.maximum(hi, XR[start:stop].max(axis=0))
        self.lo = self.tensor(lo.astype(self.work))
        self.hi = self.tensor(hi.astype(self.work))
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
        self.proj = torch.cat([self.project(XR[a:b]) for a, b in self.chunks(n)])
        self.sq = (self.proj * self.proj).sum(dim=1)

    # ------------------------------------------------------------------ the two jobs
    def other(self, q_codes, r_codes, symmetric, bar):
        """Distance from each query to the nearest reference of another code."""
        q_order = np.argsort(q_codes, kind="stable")
        r_order = q_order if symmetric else np.argsort(r_codes, kind="stable")
        best = np.full(len(q_codes), np.inf)
        return self._nearest(q_order, q_codes[q_order], r_order, r_codes[r_order], best,
                             exclude_same=True, symmetric=symmetric, bar=bar)

    def per_class(self, r_codes, n_classes, bar):
        """The ``(n_queries, n_classes)`` distances to the nearest reference of each code."""
        n = self.XQ.shape[0]
        best = np.full((n_classes, n), np.inf)  # one contiguous row per class
        qi_all, q_codes = np.arange(n), np.zeros(n, dtype=np.int64)
        r_order = np.argsort(r_codes, kind="stable")
        for c in range(n_classes):
            ri = r_order[r_codes[r_order] == c]
            if len(ri):
                self._nearest(qi_all, q_codes, ri, r_codes[ri], best[c],
                              exclude_same=False, symmetric=False, bar=bar)
        return np.ascontiguousarray(best.T)

    # ------------------------------------------------------------------ helpers
    def chunks(self, n):
        return [(start, min(start + self.size, n)) for start in range(0, n, self.size)]

    def tensor(self, a, dtype=None):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, dtype=dtype)

    @staticmethod
    def numpy(t):
        return t.to("cpu").numpy().astype(np.float64, copy=False)

    def same_label(self, q_codes, r_codes):
        """Boolean block of pairs with equal labels, or None when there is none.

        Both code runs are sorted, so disjoint ranges share no label.
        """
        if q_codes[0] > r_codes[-1] or r_codes[0] > q_codes[-1]:
            return None
        return self.tensor(q_codes)[:, None] == self.tensor(r_codes)[None, :]

    def project(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        return (X - self.center) @ self.basis

    def candidates(self, Q, qc, ri_all, r_codes, exclude_same):
        """Up to ``_SEED_CANDIDATES`` nearest references per query in the projection.

        Returns ``(rows, refs)``: query rows within the block and reference row indices.
        """
        Qp = self.project(Q)
        Qsq = (Qp * Qp).sum(dim=1)
        P, Psq = self.proj[ri_all], self.sq[ri_all]
        vals, idxs = [], []
        for b0, b1 in self.chunks(len(ri_all)):
            D2 = Qp @ P[b0:b1].T
            D2.mul_(-2.0).add_(Qsq[:, None]).add_(Psq[None, b0:b1])
            if exclude_same:
                same = self.same_label(qc, r_codes[b0:b1])
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

    def query_certificate(self, above_lo, below_hi, t):
        """The query side of the certificate at running minima ``t``.

        Returns the certifying columns of ``[q - lo >= t, hi - q >= t]`` (padded to a
        multiple of 8 by repeating one: repeated columns change no zero), the feature and
        the level (``lo`` or ``hi``) each column compares a reference with, and the
        query matrix on those columns.
        """
        t = self.tensor(t, above_lo.dtype)[:, None]
        cert_q = torch.cat([above_lo >= t, below_hi >= t], dim=1)
        cols = torch.nonzero(cert_q.any(dim=0)).squeeze(1)
        if cols.numel() % 8:
            cols = torch.cat([cols, cols[:1].expand(8 - cols.numel() % 8)])
        d = above_lo.shape[1]
        features = cols % d
        levels = torch.where(cols < d, self.lo[features], self.hi[features])
        return cols, features, levels, cert_q[:, cols]

    # ------------------------------------------------------------------ the search
    def _nearest(self, qi_all, q_codes, ri_all, r_codes, best, *, exclude_same, symmetric,
                 bar):
        """Lower ``best`` to the exact l_inf distance of each query to its nearest reference.

        Queries are rows ``qi_all`` of ``XQ`` (sorted by their codes ``q_codes``),
        references rows ``ri_all`` of ``XR`` (sorted by ``r_codes``); with
        ``exclude_same`` pairs of equal codes do not count. ``best`` (float64, indexed by
        query row, +inf or an upper bound already) is updated in place; with ``symmetric``
        (queries and references are the same rows of the same array) the reference side
        of each measured pair is updated too.
        """
        XR, inf = self.XR, float("inf")
        lo, hi = self.lo, self.hi
        r_chunks = self.chunks(len(ri_all))

        def fold(rows, refs, qi, d):
            np.minimum.at(best, qi[rows], d)
            if symmetric:
                np.minimum.at(best, refs, d)

        for a0, a1 in self.chunks(len(qi_all)):
            qi, qc = qi_all[a0:a1], q_codes[a0:a1]
            Qn = np.ascontiguousarray(self.XQ[qi], dtype=self.work)
            Qw = torch.from_numpy(Qn).to(self.device)
            above_lo, below_hi = Qw - lo, hi - Qw  # exactly the differences to r == lo, hi
            # 1. Seed the running minima with the projection's nearest candidates.
            rows, refs = self.candidates(Qn, qc, ri_all, r_codes, exclude_same)
            if len(rows):
                fold(rows, refs, qi, _tail_max(Qn, XR, rows, refs).astype(np.float64))
            # 2. Certify blocks; measure only the uncertified pairs. The query side of the
            # certificate is rebuilt only when a tenth of its running minima have dropped
            # (a certificate at older, larger minima is still sound, just weaker).
            t_cert, cert = None, None
            for b0, b1 in r_chunks:
                rc = r_codes[b0:b1]
                if exclude_same and qc[0] == qc[-1] == rc[0] == rc[-1]:
                    continue  # one class only: no pair counts
                ri = ri_all[b0:b1]
                Rw = torch.from_numpy(np.ascontiguousarray(XR[ri], dtype=self.work))
                Rw = Rw.to(self.device)
                t_now = best[qi]
                if t_cert is None or (t_now < t_cert).mean() > _REBUILD_SHARE:
                    t_cert = t_now.copy()
                    cert = self.query_certificate(above_lo, below_hi, t_now)
                cols, features, levels, cert_q = cert
                same = self.same_label(qc, rc) if exclude_same else None
                if cols.numel():
                    cert_r = Rw[:, features].T == levels[:, None]
                    need = _count_products(cert_q, cert_r) == 0
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
                    best[qi] = np.minimum(best[qi], self.numpy(D.amin(dim=1)))
                    if symmetric:
                        best[ri] = np.minimum(best[ri], self.numpy(D.amin(dim=0)))
                    del D
                else:
                    ci, cj = (t.cpu().numpy() for t in torch.nonzero(need, as_tuple=True))
                    fold(ci, ri[cj], qi, _tail_max(Qn, XR, ci, ri[cj]).astype(np.float64))
                del need, same
            bar.update(a1 - a0)
        return best

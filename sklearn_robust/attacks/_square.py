"""Square Attack (Andriushchenko et al. 2020): a score-based black-box attack.

Random search over perturbations that are constant on small squares, accepted when they
lower the margin of the true class. It queries the model's scores only and never takes a
gradient, so it is not fooled by gradient masking: when it breaks points that the
gradient attacks could not, the gradient attacks were misled.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._apgd import _check_fraction, _check_int
from ._base import Attack
from ._losses import margin

# Iterations (out of a 10000-query budget) after which the square's area is halved.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
# Fresh signs drawn for a proposal that would not change the point (reference: unbounded).
_MAX_RESAMPLE = 10


class CallableModule(nn.Module):
    """Wrap a function ``f(x) -> scores`` as a parameterless module.

    The output may be a tensor or an array (converted to a float tensor on ``x``'s
    device). Lets attacks take a model given only as a callable.

    Parameters
    ----------
    function : callable
        Maps a batch ``(N, ...)`` to scores ``(N, C)``: logits or probabilities.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.attacks import CallableModule
    >>> CallableModule(lambda x: x.sum(1, keepdim=True))(torch.ones(2, 3))
    tensor([[3.],
            [3.]])
    """

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        """Scores of ``x`` as a float tensor on ``x``'s device."""
        out = self.function(x)
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(out, dtype=x.dtype, device=x.device)
        return out


def as_module(model):
    """``model`` itself if it is an ``nn.Module``, else :class:`CallableModule` around it.

    Parameters
    ----------
    model : torch.nn.Module or callable
        A module, or a function mapping a batch to scores.

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.attacks import as_module
    >>> linear = torch.nn.Linear(2, 2)
    >>> as_module(linear) is linear
    True
    >>> type(as_module(lambda x: x)).__name__
    'CallableModule'
    """
    if isinstance(model, nn.Module):
        return model
    if not callable(model):
        raise TypeError(f"model must be a torch module or a callable, got {type(model).__name__}.")
    return CallableModule(model)


def _image_shape(sample_shape):
    """View one sample as ``(channels, height, width)``; ``height == 1`` means 1-D."""
    if len(sample_shape) == 1:  # (features,): one channel, a row of features
        return 1, 1, sample_shape[0]
    if len(sample_shape) == 2:  # (channels, length)
        return sample_shape[0], 1, sample_shape[1]
    if len(sample_shape) == 3:  # (channels, height, width)
        return tuple(sample_shape)
    raise ValueError(
        "Square needs samples of shape (features,), (channels, length) or "
        f"(channels, height, width), got {tuple(sample_shape)}."
    )


class Square(Attack):
    """Square Attack, l_inf: random search over square-shaped sign perturbations.

    Starts from vertical stripes of ``+-eps`` (one random sign per channel and column).
    Each iteration picks, for every point not yet broken, a random window of side ``s``
    (its area a fraction ``p`` of the image, ``p`` falling from ``p_init`` on a fixed
    schedule) and sets the perturbation inside it to ``+-eps``, one random sign per
    channel; the proposal is kept if it lowers the margin ``s_y - max_{i != y} s_i``.
    Only forward passes (one query per point and iteration), never a gradient.

    Inputs are viewed as images: a sample of shape ``(C, H, W)`` gets square windows;
    ``(features,)`` and ``(C, length)`` samples are rows, with windows that are
    intervals of ``p * length`` features.

    Parameters
    ----------
    threat : ThreatModel
        ``eps`` and bounds; the norm must be ``'linf'`` (the l_2 version is not
        implemented and raises ``ValueError``).
    n_queries : int, default=5000
        Model queries per point, the stripe initialisation included (plus one query of
        the clean point; points already misclassified are not attacked).
    p_init : float, default=0.8
        Initial fraction of the input covered by a window.
    **kwargs
        ``batch_size``, ``random_state``, ``verbose`` of :class:`Attack`.

    Notes
    -----
    The model may be a ``torch.nn.Module`` or any callable returning logits or
    probabilities for a batch; it is queried under ``torch.no_grad()``. A module is put
    in eval mode for the attack and restored after; a callable is queried as it is, so
    a model inside it should already be in eval mode.

    References
    ----------
    .. [1] M. Andriushchenko, F. Croce, N. Flammarion and M. Hein, "Square Attack: a
       query-efficient black-box adversarial attack via random search", ECCV 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import Square
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 3)
    >>> X, y = torch.rand(8, 4), torch.zeros(8, dtype=torch.long)
    >>> attack = Square(ThreatModel(eps=0.1, bounds=(0, 1)), n_queries=50, random_state=0)
    >>> X_adv = attack(lambda x: model(x).softmax(dim=1), X, y)  # scores only
    >>> bool(attack.threat.contains(X_adv, X).all())
    True
    """

    name = "square"
    uses_gradients = False

    def __init__(self, threat, *, n_queries=5000, p_init=0.8, **kwargs):
        super().__init__(threat, **kwargs)
        if threat.norm != "linf":
            raise ValueError(
                f"Square is implemented for norm='linf' only, got norm={threat.norm!r}."
            )
        self.n_queries = _check_int(n_queries, "n_queries")
        self.p_init = _check_fraction(p_init, "p_init")

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, n_queries={self.n_queries})"

    def __call__(self, module, X, y):
        """Adversarial points for ``X``; ``module`` may be any callable returning scores."""
        return super().__call__(as_module(module), X, y)

    def p_schedule(self, iteration):
        """Fraction of the input a window covers at ``iteration``.

        ``p_init`` halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and
        8000 of a 10000-query budget, rescaled to ``n_queries``.

        Examples
        --------
        >>> from sklearn_robust import ThreatModel
        >>> from sklearn_robust.attacks import Square
        >>> square = Square(ThreatModel(eps=0.1), n_queries=1000)
        >>> square.p_schedule(0), square.p_schedule(3), square.p_schedule(999)
        (0.8, 0.4, 0.0015625)
        """
        scaled = int(iteration / self.n_queries * 10000)
        return self.p_init / 2 ** sum(scaled > t for t in _HALVINGS)

    @staticmethod
    def _window_sides(p, height, width):
        if height == 1:  # rows: an interval of about p * width features
            return 1, min(max(round(p * width), 1), max(width - 1, 1))
        side = round(math.sqrt(p * height * width))
        side = min(max(side, 1), max(min(height, width) - 1, 1))
        return side, side

    def _perturb_batch(self, module, x, y, generator):
        with torch.no_grad():
            return self._search(module, x, y, generator)

    def _search(self, module, x, y, generator):
        threat, eps = self.threat, self.threat.eps
        bounds = threat.bounds_like(x)
        sample_shape = x.shape[1:]
        c, h, w = _image_shape(sample_shape)
        device = x.device

        def clamp(z):  # bounds apply in the caller's layout
            return threat.clamp(z.reshape(-1, *sample_shape), bounds).reshape(z.shape)

        def query(z, labels):
            scores = module(z.reshape(-1, *sample_shape)).float()
            return margin(scores, labels), scores.argmax(dim=1) != labels

        def signs(shape):
            draw = torch.randint(0, 2, shape, generator=generator, device=device)
            return (2 * draw - 1).to(x.dtype)

        x_img = x.reshape(-1, c, h, w)
        x_best = x_img.clone()
        m_best, fooled = query(x_img, y)

        # Initialisation: vertical stripes of +-eps, one sign per channel and column.
        idx = (~fooled).nonzero().squeeze(1)
        if idx.numel():
            x_init = clamp(x_img[idx] + eps * signs((idx.numel(), c, 1, w)))
            m_init, hit = query(x_init, y[idx])
            x_best[idx], m_best[idx], fooled[idx] = x_init, m_init, hit

        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        for iteration in range(1, self.n_queries):
            idx = (~fooled).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            b = idx.numel()
            x_cur, x_old = x_img[idx], x_best[idx]
            delta = x_old - x_cur

            side_h, side_w = self._window_sides(self.p_schedule(iteration), h, w)
            top = torch.randint(0, h - side_h + 1, (b, 1), generator=generator, device=device)
            left = torch.randint(0, w - side_w + 1, (b, 1), generator=generator, device=device)
            in_rows = (rows >= top) & (rows < top + side_h)
            in_cols = (cols >= left) & (cols < left + side_w)
            window = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (b, 1, h, w)

            sign = signs((b, c, 1, 1))
            for _ in range(_MAX_RESAMPLE):
                x_new = clamp(x_cur + torch.where(window, eps * sign, delta))
                unchanged = ((x_new - x_old).abs() < 1e-7).flatten(1).all(dim=1)
                if not bool(unchanged.any()):
                    break
                sign = torch.where(unchanged.view(-1, 1, 1, 1), signs((b, c, 1, 1)), sign)

            m_new, hit = query(x_new, y[idx])
            accept = (m_new < m_best[idx]) | hit
            x_best[idx[accept]] = x_new[accept]
            m_best[idx[accept]] = m_new[accept]
            fooled[idx[hit]] = True
        return x_best.reshape(x.shape)

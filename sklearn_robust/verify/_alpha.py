"""alpha-CROWN: the lower slopes of unstable ReLUs optimised for the final bound.

Any slope ``alpha`` in ``[0, 1]`` gives a sound lower line ``alpha z <= relu(z)``, so
every bound computed along the way is sound; the best one per point and margin is kept.
The slopes (one per point, margin and unstable unit) are ascended by Adam on the sum of
the margin bounds and projected back to ``[0, 1]`` after every step; the pre-activation
bounds stay those of CROWN (they are not re-optimised).
"""

import torch

from ._crown import ReLURelaxation, backward

__all__ = ["optimised_bounds"]


def optimised_bounds(layers, stop, a, const, relaxed, input_set, *, steps, lr):
    """``(N, R)``: the best lower bound of ``a . v_stop + const`` over ``steps`` steps.

    The first evaluation uses CROWN's adaptive slopes, so the result is never below
    CROWN's bound.
    """
    rows = a.shape[1]
    alphas = {}
    for k, relax in relaxed.items():
        if isinstance(relax, ReLURelaxation) and k < stop and bool(relax.unstable.any()):
            start = relax.lower_slope[:, None, :].expand(-1, rows, -1)
            alphas[k] = start.clone().requires_grad_(True)
    best = None
    optimiser = torch.optim.Adam(list(alphas.values()), lr=lr) if alphas else None
    for step in range(steps + 1):
        with torch.enable_grad():
            a_in, c_in = backward(layers, stop, a, const, relaxed, alphas)
            bound = input_set.minimum(a_in, c_in)
            best = bound.detach() if best is None else torch.maximum(best, bound.detach())
            if optimiser is None or step == steps:
                break
            optimiser.zero_grad()
            (-bound.sum()).backward()
        optimiser.step()
        with torch.no_grad():
            for alpha in alphas.values():
                alpha.clamp_(0.0, 1.0)
    return best

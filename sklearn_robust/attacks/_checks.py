"""AutoAttack's checks: warnings that an evaluation may overstate robustness.

Each check names the problem and what to do about it, and is issued once per attack call
(see ``_warnings.warn_once``; a cascade's stages share the cascade's call):

- randomised outputs: two forward passes on the same inputs differ
  (:func:`check_model_outputs`);
- probabilities rather than logits: every row in ``[0, 1]`` sums to 1, so gradients
  through a saturated softmax vanish (:func:`check_model_outputs`, gradient attacks only);
- zero or NaN input gradients: the output does not depend on the input through autograd,
  or the gradient is masked (:func:`input_gradient`);
- a black-box stage breaking points the gradient stages missed
  (:func:`check_black_box_gains`).

Too few classes for DLR is the loss registry's rule (``_losses.resolve_loss``), which
warns the same way.

References
----------
.. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
   ensemble of diverse parameter-free attacks", ICML 2020 (the flags of its code).
"""

import torch

from ._warnings import warn_once

#: Points of the first batch the output checks look at (two forward passes of these).
N_CHECKED = 64
# A black-box stage breaking more than this fraction of the points after gradient stages
# is reported as a sign of gradient masking (AutoAttack's own check uses the same margin).
MASKING_TOLERANCE = 0.002


def check_model_outputs(attack, module, x):
    """Warn if ``module`` looks randomised, or (gradient attacks) outputs probabilities.

    Two forward passes on the first :data:`N_CHECKED` points of ``x``, inside the
    attack's frozen block (eval mode, no parameter gradients). Returns the first pass's
    outputs (``None`` for an empty ``x``).

    Examples
    --------
    >>> import torch, warnings
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import PGD
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Softmax(dim=1))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = PGD(ThreatModel(eps=0.1), steps=1)(model, torch.rand(5, 3), torch.zeros(5))
    >>> "look like probabilities" in str(caught[0].message)
    True
    """
    x = x[:N_CHECKED]
    if x.shape[0] == 0:
        return None
    with torch.no_grad():
        first, second = module(x).float(), module(x).float()
    if not getattr(attack, "expects_randomness", False) and not torch.allclose(
        first, second, rtol=1e-4, atol=1e-5, equal_nan=True
    ):
        warn_once(
            f"{attack.name}: two forward passes on the same inputs gave different outputs, "
            "so the model looks randomised (in eval mode). A single-sample attack "
            "underestimates such a model's weakness: use AutoAttack(version='rand') "
            "(expectation over 20 gradient samples) and report the mean over several "
            "evaluations.",
            stacklevel=4, key="randomised",
        )
    if attack.uses_gradients and first.dim() == 2 and first.shape[1] > 1:
        in_range = bool(((first >= -1e-6) & (first <= 1 + 1e-6)).all())
        if in_range and bool(((first.sum(dim=1) - 1).abs() < 1e-5).all()):
            warn_once(
                f"{attack.name}: the model's outputs look like probabilities (every row in "
                "[0, 1] sums to 1), not logits. Gradients through a saturated softmax "
                "vanish and gradient attacks then overstate robustness: attack the model "
                "before its softmax (its logits).",
                stacklevel=4, key="probabilities",
            )
    return first


def input_gradient(total, x, caller, *, check=True, retain_graph=False):
    """``d total / d x``, never a silent zero.

    A ``total`` without a graph to ``x`` (a detached output, a model run under
    ``no_grad``) gets a zero gradient and a warning; with ``check``, so do zero or NaN
    gradients of some points (NaN entries are set to zero so the search stays finite).

    Parameters
    ----------
    total : torch.Tensor
        Scalar to differentiate (a sum of per-sample losses).
    x : torch.Tensor
        The input, requiring gradients.
    caller : str
        The attack, named in the warning.
    check : bool, default=True
        Check the gradient's rows for zeros and NaNs (attacks check their first step).
    retain_graph : bool, default=False
        Keep the graph for another gradient of the same forward pass.

    Returns
    -------
    torch.Tensor
        The gradient, detached, of ``x``'s shape.

    Examples
    --------
    >>> import torch, warnings
    >>> x = torch.ones(2, 3, requires_grad=True)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     grad = input_gradient((2 * x).detach().sum(), x, "APGD-CE")
    >>> float(grad.abs().sum()), "no gradient" in str(caught[0].message)
    (0.0, True)
    """
    grad = None
    if total.requires_grad:
        (grad,) = torch.autograd.grad(total, x, allow_unused=True,
                                      retain_graph=retain_graph)
    if grad is None:
        warn_once(
            f"{caller}: the model's output has no gradient with respect to its input (a "
            "detached output, or a model that leaves autograd): the attack runs with zero "
            "gradients and its figure means nothing. Make the model differentiable, or "
            "use a black-box attack (attack='square').",
            stacklevel=3, key="zero-gradient",
        )
        return torch.zeros_like(x)
    grad = grad.detach()
    return check_gradient_rows(grad, caller) if check else grad


def check_gradient_rows(grad, caller):
    """Warn if some rows of ``grad`` are zero or NaN; returns it with NaNs set to zero.

    Examples
    --------
    >>> import torch, warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = check_gradient_rows(torch.zeros(2, 3), "FAB")
    >>> "exactly zero" in str(caught[0].message)
    True
    """
    flat = grad.flatten(1)
    # Rows that are zero as computed; a NaN row zeroed below has its own warning.
    zero_rows = flat.abs().sum(dim=1) == 0
    if bool(torch.isnan(flat).any()):
        warn_once(
            f"{caller}: the input gradient is NaN for some points (a numerically unstable "
            "model or loss): those entries are set to zero. Check the model for "
            "divisions, logs or square roots of zero.",
            stacklevel=4, key="nan-gradient",
        )
        grad = torch.nan_to_num(grad, nan=0.0)
    if bool(zero_rows.any()):
        warn_once(
            f"{caller}: the input gradient is exactly zero for some points (gradient "
            "masking, e.g. a saturated softmax or a non-differentiable step): gradient "
            "attacks cannot move them and overstate robustness. Check with a black-box "
            "attack (attack='square' or the 'auto' cascade).",
            stacklevel=4, key="zero-gradient",
        )
    return grad


def check_black_box_gains(stages, counts, n_points):
    """Warn if a black-box stage broke points the earlier gradient stages missed.

    Parameters
    ----------
    stages : dict
        The cascade's stages by name, in order.
    counts : dict
        Points broken by each stage that ran.
    n_points : int
        Points attacked.
    """
    after_gradients = False
    for name, attack in stages.items():
        broke = counts.get(name, 0)
        if after_gradients and not attack.uses_gradients:
            if broke > MASKING_TOLERANCE * n_points:
                warn_once(
                    f"{type(attack).__name__} (black box, no gradients) broke {broke} of "
                    f"{n_points} points that the gradient attacks missed: they were "
                    "probably misled (gradient masking), so white-box robust accuracy "
                    "overstates robustness. Report the cascade's figure, and look for the "
                    "cause (zero gradients, randomness, saturated outputs).",
                    stacklevel=4,
                )
        after_gradients = after_gradients or attack.uses_gradients

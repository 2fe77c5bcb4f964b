"""Docstring pieces the attacks share, written once (see ``utils.Substitution``)."""

from ..utils import Substitution

# Flush-left: Substitution indents a block to its placeholder's column.
_HEADER = "References\n----------"
_CROCE_HEIN = """
.. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
   ensemble of diverse parameter-free attacks", ICML 2020."""
_SQUARE = """
.. [{n}] M. Andriushchenko, F. Croce, N. Flammarion and M. Hein, "Square Attack: a
   query-efficient black-box adversarial attack via random search", ECCV 2020."""

_FAB = """
.. [1] F. Croce and M. Hein, "Minimally distorted adversarial examples with a fast
   adaptive boundary attack", ICML 2020."""

# The start of every attack's Examples section: a small linear model and points it
# classifies correctly. Each docstring goes on with what is its attack's own.
_ATTACK_EXAMPLE = """
Examples
--------
>>> import torch
>>> from sklearn_robust import ThreatModel
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = torch.nn.Linear(4, 5)  # 4 features, 5 classes
>>> X = torch.rand(16, 4)
>>> y = model(X).argmax(dim=1)  # every point correct before the attack"""

# The start of every loss's Examples section: the same two points for each loss.
_LOSS_EXAMPLE = """
Examples
--------
Two points of class 0, the first classified correctly, the second not:

>>> import torch
>>> logits = torch.tensor([[4.0, 2.0, 1.0, 0.0], [0.0, 3.0, 1.0, 2.0]])
>>> y = torch.tensor([0, 0])"""

#: ``@docs`` fills ``%(name)s`` lines of a docstring with these blocks.
docs = Substitution(
    attack_example=_ATTACK_EXAMPLE,
    loss_example=_LOSS_EXAMPLE,
    attack_kwargs="""
        **kwargs
            ``batch_size``, ``random_state``, ``verbose`` of :class:`Attack`.""",
    croce_hein_refs=_HEADER + _CROCE_HEIN,
    square_refs=_HEADER + _SQUARE.format(n=1),
    fab_refs=_HEADER + _FAB,
    autoattack_refs=_HEADER + _CROCE_HEIN + _SQUARE.format(n=2),
    loss_inputs="""
        logits : torch.Tensor of shape (N, C)
            Unnormalised class scores.
        y : torch.Tensor of shape (N,)
            Class indices.""",
    loss_returns="""
        Returns
        -------
        torch.Tensor of shape (N,)""",
    cascade_attributes="""
        Attributes
        ----------
        attacks : dict
            The stages by name, in order.
        stage_counts_ : dict
            After a call: points broken by each stage that ran, by name, in order.
        n_points_ : int
            After a call: points given.
        clean_correct_ : int
            After a call: points correctly classified without attack.
        robust_ : int
            After a call: points no stage broke (``robust_ / n_points_`` is the robust
            accuracy); ``clean_correct_ - sum(stage_counts_.values()) == robust_``.""",
)

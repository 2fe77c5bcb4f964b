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

#: ``@docs`` fills ``%(name)s`` lines of a docstring with these blocks.
docs = Substitution(
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

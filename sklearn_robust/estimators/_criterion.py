"""skorch's ``criterion`` in an objective's cross-entropy term, or refused where it has none."""

import torch


class CriterionMixin:
    """Pass the estimator's criterion to objectives that have a place for it.

    The default (``criterion=torch.nn.CrossEntropyLoss`` without ``criterion__*``
    parameters) trains each method as published, bit for bit. Any other criterion, or
    any ``criterion__*`` parameter (``weight``, ``label_smoothing``), replaces the
    objective's cross-entropy term named by its ``criterion_term``; a method without such
    a term refuses it before any work, as does label smoothing asked for twice.
    """

    def _criterion_given(self):
        """The parameters that make the criterion other than the default, by name."""
        named = sorted(f"criterion__{k}" for k in self.get_params_for("criterion"))
        if self.criterion is not torch.nn.CrossEntropyLoss:
            named.insert(0, "criterion")
        return named

    def _check_criterion(self, objective):
        given = self._criterion_given()
        if not given:
            return
        method = type(objective).__name__
        term = getattr(objective, "criterion_term", None)
        if term is None:
            raise ValueError(
                f"{', '.join(given)} cannot be used by {type(self).__name__}: its method "
                f"({method}) has no cross-entropy term for a criterion to replace, so it "
                "would be ignored. Leave the criterion at its default."
            )
        smoothing = self.get_params_for("criterion").get("label_smoothing")
        if smoothing is None and isinstance(self.criterion, torch.nn.Module):
            smoothing = getattr(self.criterion, "label_smoothing", None)
        if smoothing and getattr(objective, "ls", 0):
            raise ValueError(
                f"label smoothing was asked for twice: ls={objective.ls} and "
                f"criterion__label_smoothing={smoothing}; set one of them ({type(self).__name__}"
                f"'s ls smooths towards the other classes, the criterion's towards all)."
            )

    def criterion_arguments(self):
        """``{'criterion': criterion_}`` for the objective when one is given, else ``{}``."""
        return {"criterion": self.criterion_} if self._criterion_given() else {}

    def initialize_criterion(self):
        """skorch's, and a parameterless criterion kept out of an accelerator's DDP.

        Accelerate wraps every module it prepares (skorch's ``AccelerateMixin`` prepares
        the criterion) in ``DistributedDataParallel``, which refuses a module without
        trainable parameters such as ``CrossEntropyLoss``; such a criterion needs no
        synchronisation, so it is marked as prepared and left as it is.
        """
        super().initialize_criterion()
        criterion = self.criterion_
        if (getattr(self, "accelerator", None) is not None
                and isinstance(criterion, torch.nn.Module)
                and not any(p.requires_grad for p in criterion.parameters())):
            criterion._is_accelerate_prepared = True
        return self


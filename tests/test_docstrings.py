"""Every public class and function documents itself with a runnable example."""

import importlib
import inspect

import pytest

PUBLIC_MODULES = [
    "sklearn_robust",
    "sklearn_robust.attacks",
    "sklearn_robust.objectives",
    "sklearn_robust.estimators",
    "sklearn_robust.threat",
    "sklearn_robust.bridge",
    "sklearn_robust.metrics",
    "sklearn_robust.separation",
    "sklearn_robust.datasets",
    "sklearn_robust.persistence",
    "sklearn_robust.callbacks",
    "sklearn_robust.plotting",
    "sklearn_robust.recipes",
]


def public_objects():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n for n, o in vars(module).items()
            if not n.startswith("_") and (inspect.isfunction(o) or inspect.isclass(o))
            and o.__module__ == module_name
        ]
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("name,obj", list(public_objects()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_public_object_has_numpydoc_with_doctest(name, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{name} has no docstring"
    assert "Examples\n--------" in doc, f"{name} has no Examples section"
    assert ">>>" in doc, f"{name}'s Examples hold no doctest"

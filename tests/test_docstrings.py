"""Every public class and function documents itself with a runnable example."""

import importlib
import inspect
import re

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
    "sklearn_robust.verify",
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


PARAMETER_LINE = re.compile(r"^\*{0,2}\w+(, \*{0,2}\w+)*( : .+)?$")


@pytest.mark.parametrize("name,obj", list(public_objects()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_parameter_descriptions_are_indented_under_their_parameter(name, obj):
    """In a Parameters section, a line flush with the names must name parameters: a
    description there (a shared block that lost its indentation) reads as more of them."""
    doc = inspect.cleandoc(obj.__doc__ or "")
    match = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[\w ]*\n-+\n|\Z)", doc, re.S | re.M)
    if match is None:
        return
    flush = [line for line in match.group(1).splitlines()
             if line and not line[0].isspace()]
    assert all(PARAMETER_LINE.match(line) for line in flush), [
        line for line in flush if not PARAMETER_LINE.match(line)]

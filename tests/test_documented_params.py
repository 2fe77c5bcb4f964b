"""Every documented parameter against what the code accepts, read side by side.

For each public class and function (the ``__all__`` of the public modules) and each
public method they define, the numpydoc ``Parameters`` section is parsed and compared
with the signature and with the constraints the code declares:

- a set of options in braces, ``norm : {'linf', 'l2', 'l1'}``, must be exactly the set
  the parameter's ``StrOptions`` constraint accepts (deprecated and ``Hidden`` options
  aside), and a ``None`` in the braces must be accepted by the constraint;
- a ``default=`` that is a Python literal must be the signature's default, and a
  default of a braced parameter one of its options;
- every documented parameter is in the signature, and every parameter of the signature
  is documented.

The constraints are found where the code declares them, not restated here: a class's
``_parameter_constraints``, then what its constructor and checks validate, and for a
function what it validates itself or through the package's helpers it calls (read from
their source: the constraint tables they name, ``check_scalar_param(value, 'name',
[...])``, ``check_norm(...)``, ``if value not in OPTIONS``, a lookup ``TABLE[value]``).
A parameter validated nowhere in reach (one only passed on, like ``RobustScoring``'s
``norm``) falls back to :data:`BY_NAME`: every ``norm`` documents
:data:`~sklearn_robust.utils.NORMS`, every ``start`` :data:`~sklearn_robust.threat.STARTS`.
"""

import ast
import builtins
import importlib
import inspect
import re
import textwrap
from functools import cache

import pytest
from test_docstrings import PUBLIC_MODULES  # noqa: E402 (one list of the public modules)

from sklearn_robust.threat import STARTS
from sklearn_robust.utils import NORMS, Hidden, StrOptions, check_norm

#: What a parameter of this name accepts when nothing in reach declares it (it is passed
#: on to a function or method that validates it): the package's declared set.
BY_NAME = {
    "norm": [StrOptions(set(NORMS))],
    "start": [StrOptions(set(STARTS))],  # ThreatModel.start dispatches on these
}

# Methods of a class that validate its constructor's parameters.
VALIDATING_METHODS = ("__init__", "__post_init__", "_check_params", "initialize")
# How deep the scan follows the package's helpers from the documented callable.
MAX_DEPTH = 4

SECTION = re.compile(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", re.S | re.M)
BRACES = re.compile(r"\{([^{}:]*)\}")
DEFAULT = re.compile(r"default=(.+)$")


def _ours(obj):
    return (getattr(obj, "__module__", None) or "").startswith("sklearn_robust")


# ---------------------------------------------------------------- what is documented
def public_callables():
    """``(label, obj, kind)`` for every public class, function and public method."""
    seen, found = set(), []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not _ours(obj):
                continue
            label = f"{obj.__module__.split('._')[0]}.{obj.__qualname__}"
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            found.append((label, obj, "class" if inspect.isclass(obj) else "function"))
            if inspect.isclass(obj):
                for attr, method in _public_methods(obj):
                    if id(method) not in seen:
                        seen.add(id(method))
                        found.append((f"{label}.{attr}", method, "method"))
    return found


def _public_methods(cls):
    for attr in sorted(dir(cls)):
        if attr.startswith("_"):
            continue
        for klass in cls.__mro__:
            if attr in vars(klass):
                raw = vars(klass)[attr]
                break
        else:
            continue
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if inspect.isfunction(func) and _ours(func) and _ours(klass):
            yield attr, func


def parse_parameters(doc):
    """``{name: (type line, default)}`` of a numpydoc Parameters section.

    ``**kwargs`` is read as ``kwargs``; the default is ``...`` unless the type line
    gives a Python literal. ``a, b : str, default='x', 'y'`` gives each name its own.
    """
    match = SECTION.search(doc or "")
    if match is None:
        return {}
    params = {}
    for line in match.group(1).splitlines():
        if not line or line[0].isspace():
            continue
        head, _, type_ = line.partition(" : ")
        names = [name.strip().lstrip("*") for name in head.split(",")]
        default = documented_default(type_)
        defaults = (list(default) if len(names) > 1 and isinstance(default, tuple)
                    and len(default) == len(names) else [default] * len(names))
        for name, value in zip(names, defaults, strict=True):
            params[name] = (type_.strip(), value)
    return params


def brace_options(type_):
    """The options listed in braces (``(strings, has_none)``), or None without braces."""
    match = BRACES.search(type_)
    if match is None:
        return None
    values = [ast.literal_eval(part.strip()) for part in match.group(1).split(",")]
    return {v for v in values if isinstance(v, str)}, None in values


def documented_default(type_):
    """The ``default=`` of a type line, when it is a Python literal."""
    match = DEFAULT.search(type_)
    if match is None:
        return ...
    try:
        return ast.literal_eval(match.group(1).strip())
    except (ValueError, SyntaxError):
        return ...


def signature_of(obj, kind, *, merged=True):
    """``{name: inspect.Parameter}`` of a callable.

    For a class, the constructor's; with ``merged``, also those of the constructors of
    its bases in the package, which a ``**kwargs`` passes on to (the first one wins).
    """
    if kind != "class":
        params = dict(inspect.signature(obj).parameters)
        params.pop("self", None)
        params.pop("cls", None)
        return params
    result = dict(inspect.signature(obj).parameters)
    if merged:
        for klass in obj.__mro__:
            init = vars(klass).get("__init__")
            if _ours(klass) and init is not None:
                for name, param in list(inspect.signature(init).parameters.items())[1:]:
                    result.setdefault(name, param)
    return result


# ---------------------------------------------------------------- what is accepted
def _is_constraint_table(value):
    return (isinstance(value, dict) and value and all(isinstance(k, str) for k in value)
            and all(v == "no_validation" or isinstance(v, list) for v in value.values())
            and any(isinstance(c, StrOptions) or c is None
                    for v in value.values() if isinstance(v, list) for c in v))


def _string_collection(value):
    if isinstance(value, dict):
        value = list(value)
    if isinstance(value, (tuple, list, set, frozenset)) and value and all(
            isinstance(v, str) for v in value):
        return set(value)
    return None


def _evaluate(node, namespace):
    try:
        return eval(compile(ast.Expression(node), "<constraint>", "eval"), namespace)
    except Exception:  # an expression of local values: not a declaration
        return None


def _call_name(node):
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _argument(node, position, keyword):
    for kw in node.keywords:
        if kw.arg == keyword:
            return kw.value
    return node.args[position] if len(node.args) > position else None


def _literal(node):
    return node.value if isinstance(node, ast.Constant) else None


@cache
def _scan(func):
    """``({param: constraints}, [helpers])`` declared in ``func``'s own source."""
    func = inspect.unwrap(func)
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return {}, []
    namespace = {**vars(builtins), **func.__globals__}
    found, helpers = {}, []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _call_name(node) == "check_scalar_param":
            name, kinds = _literal(_argument(node, 1, "name")), _argument(node, 2, "constraints")
            kinds = None if kinds is None else _evaluate(kinds, namespace)
            if isinstance(name, str) and isinstance(kinds, list):
                found.setdefault(name, kinds)
        elif isinstance(node, ast.Call) and _call_name(node) == "check_norm":
            name = _literal(_argument(node, 1, "name")) or "norm"
            norms = _argument(node, 3, "norms")
            norms = NORMS if norms is None else _evaluate(norms, namespace)
            if isinstance(name, str) and norms is not None:
                found.setdefault(name, [StrOptions(set(norms))])
        elif (isinstance(node, ast.Compare) and len(node.ops) == 1
              and isinstance(node.ops[0], ast.NotIn)):
            left, right = node.left, node.comparators[0]
            name = left.id if isinstance(left, ast.Name) else getattr(left, "attr", None)
            options = _string_collection(_evaluate(right, namespace)) if isinstance(
                right, (ast.Name, ast.Attribute)) else None
            if name and options:
                found.setdefault(name, [StrOptions(options)])
        elif (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name)
              and isinstance(node.value, ast.Name)):
            # A lookup in a table of the module validates the key (by KeyError).
            options = _string_collection(func.__globals__.get(node.value.id))
            if options and isinstance(func.__globals__.get(node.value.id), dict):
                found.setdefault(node.slice.id, [StrOptions(options)])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            value = func.__globals__.get(node.id)
            if _is_constraint_table(value):
                for name, kinds in value.items():
                    found.setdefault(name, kinds)
            elif inspect.isfunction(value) and _ours(value) and value is not func:
                helpers.append(value)
    return found, helpers


def reached_constraints(funcs):
    """Constraints declared by ``funcs`` and the helpers they call; the nearer wins."""
    result, frontier, seen = {}, list(funcs), set()
    for _ in range(MAX_DEPTH + 1):
        level, next_frontier = {}, []
        for func in frontier:
            if func in seen:
                continue
            seen.add(func)
            found, helpers = _scan(func)
            for name, kinds in found.items():
                level.setdefault(name, kinds)
            next_frontier.extend(helpers)
        for name, kinds in level.items():
            result.setdefault(name, kinds)
        frontier = next_frontier
    return result


def accepted_constraints(obj, kind):
    """``{param: constraints}`` the code declares for ``obj``'s parameters."""
    if kind == "class":
        declared = dict(getattr(obj, "_parameter_constraints", None) or {})
        methods = [vars(klass)[m] for klass in obj.__mro__ if _ours(klass)
                   for m in VALIDATING_METHODS if inspect.isfunction(vars(klass).get(m))]
        reached = reached_constraints(methods)
    else:
        declared, reached = {}, reached_constraints([obj])
    return {**BY_NAME, **reached, **declared}


def string_options(kinds):
    """``(strings, accepts_none)`` of a constraint list, or None without StrOptions."""
    if kinds == "no_validation":
        return None
    strings, has_str_options = set(), False
    for kind in kinds:
        if isinstance(kind, Hidden):
            continue
        if isinstance(kind, StrOptions):
            has_str_options = True
            strings |= set(kind.options) - set(kind.deprecated)
    return (strings, None in kinds) if has_str_options else None


# ---------------------------------------------------------------- the checks
CALLABLES = public_callables()
IDS = [label for label, _, _ in CALLABLES]


def _same_default(documented, actual):
    if isinstance(actual, bool) or isinstance(documented, bool):
        return documented is actual
    if isinstance(actual, (int, float)) and isinstance(documented, (int, float)):
        return actual == documented
    return type(actual) is type(documented) and actual == documented


def _mismatches(label, obj, kind):
    """What the Parameters section of ``obj`` says that its code contradicts."""
    documented = parse_parameters(inspect.getdoc(obj))
    if not documented:
        return []
    signature = signature_of(obj, kind)
    constraints = accepted_constraints(obj, kind)
    problems = []
    for name, (type_, default) in documented.items():
        braces = brace_options(type_)
        if braces is not None:
            doc_strings, doc_none = braces
            kinds = constraints.get(name, [])
            accepted = string_options(kinds)
            if accepted is None:
                problems.append(f"{label}({name}): documents options {sorted(doc_strings)} "
                                "that no string-options constraint in reach declares")
            else:
                strings, none_accepted = accepted
                deprecated = set().union(*(getattr(k, "deprecated", set()) for k in kinds))
                if doc_strings - deprecated != strings:
                    problems.append(f"{label}({name}): documents "
                                    f"{sorted(doc_strings - deprecated)}, accepts "
                                    f"{sorted(strings)}")
                if doc_none and not none_accepted:
                    problems.append(f"{label}({name}): documents None, which it refuses")
            if isinstance(default, str) and default not in doc_strings:
                problems.append(f"{label}({name}): default {default!r} is not among its "
                                "documented options")
        actual = signature[name].default if name in signature else inspect.Parameter.empty
        if default is not ... and actual is not inspect.Parameter.empty and not _same_default(
                default, actual):
            problems.append(f"{label}({name}): documents default={default!r}, the signature "
                            f"has {actual!r}")
    return problems


def _is_variadic(param):
    return param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)


def _signature_gaps(label, obj, kind):
    """Documented names missing from the signature, and the reverse.

    A class documents its constructor's own parameters; those of its bases may be
    documented one by one or under ``**kwargs``, but whatever it documents must exist
    in the constructor or in a base's it forwards to.
    """
    documented = parse_parameters(inspect.getdoc(obj))
    if not documented:
        return []
    own = signature_of(obj, kind, merged=False)
    reachable = signature_of(obj, kind)
    problems = [f"{label}: documents {name!r}, not in the signature"
                for name in documented if name not in reachable]
    problems += [f"{label}: parameter {name!r} is not documented"
                 for name, param in own.items()
                 if name not in documented and not _is_variadic(param)]
    return problems


@pytest.mark.parametrize("label,obj,kind", CALLABLES, ids=IDS)
def test_documented_options_are_the_accepted_ones(label, obj, kind):
    problems = _mismatches(label, obj, kind)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("label,obj,kind", CALLABLES, ids=IDS)
def test_documented_parameters_are_the_signature(label, obj, kind):
    problems = _signature_gaps(label, obj, kind)
    assert not problems, "\n".join(problems)


def test_every_norm_parameter_documents_the_norms_it_accepts():
    """The one-line summary of the first test, for the norm: every documented ``norm``
    lists exactly what its object accepts (all of ``NORMS`` unless it says otherwise)."""
    problems = [problem for label, obj, kind in CALLABLES
                for problem in _mismatches(label, obj, kind) if "(norm)" in problem]
    assert not problems, "\n".join(problems)


def test_the_scan_finds_the_declared_constraints():
    """The scan reads declarations of each kind the package uses."""
    from sklearn_robust.attacks import APGD, AutoAttack
    from sklearn_robust.metrics import local_lipschitz_score, robust_accuracy_score
    from sklearn_robust.recipes import robust_recipe
    from sklearn_robust.separation import RSeparation, r_separation
    from sklearn_robust.threat import ThreatModel

    def options(obj, name):
        kind = "class" if inspect.isclass(obj) else "function"
        return string_options(accepted_constraints(obj, kind)[name])[0]

    assert options(robust_accuracy_score, "norm") == set(NORMS)  # a shared table
    assert options(local_lipschitz_score, "protocol") == {"best", "yang2020"}  # its own
    assert options(r_separation, "norm") == set(NORMS)  # check_norm(norms=...) in a helper
    assert options(RSeparation, "norm") == set(NORMS)  # _parameter_constraints
    assert options(ThreatModel, "norm") == set(NORMS)  # check_norm in __post_init__
    assert options(APGD, "loss") == {"ce", "dlr"}  # check_scalar_param inline
    assert options(AutoAttack, "version") == {"standard", "fast", "rand"}
    assert options(robust_recipe, "method") == {"trades", "score", "at"}


def _documents_too_few_norms(X, *, norm="linf"):
    """A function whose documentation lags behind its code.

    Parameters
    ----------
    X : array-like
        Data.
    norm : {'linf', 'l2'}, default='linf'
        Norm.
    """
    check_norm(norm, caller="_documents_too_few_norms")


def _accepts_fewer_norms(X, *, norm="linf", kind="a", steps=3):
    """A function narrower than the package's norms, documented with all of them.

    Parameters
    ----------
    X : array-like
        Data.
    norm : {'linf', 'l2', 'l1'}, default='l2'
        Norm.
    kind : {'a', 'b'}, default='a'
        Kind.
    steps : int, default=2
        Steps.
    """
    check_norm(norm, caller="_accepts_fewer_norms", norms=("linf", "l2"))
    if kind not in _KINDS:
        raise ValueError(kind)


_KINDS = ("a", "b", "c")


def test_the_checks_report_what_the_code_contradicts():
    """The checks are not vacuous: each kind of mismatch is reported, naming both sides."""
    assert _mismatches("f", _documents_too_few_norms, "function") == [
        "f(norm): documents ['l2', 'linf'], accepts ['l1', 'l2', 'linf']"]
    assert _mismatches("g", _accepts_fewer_norms, "function") == [
        "g(norm): documents ['l1', 'l2', 'linf'], accepts ['l2', 'linf']",
        "g(norm): documents default='l2', the signature has 'linf'",
        "g(kind): documents ['a', 'b'], accepts ['a', 'b', 'c']",
        "g(steps): documents default=2, the signature has 3",
    ]
    assert _signature_gaps("g", _accepts_fewer_norms, "function") == []

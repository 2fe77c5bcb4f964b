"""scikit-learn's own estimator contract, run over every estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_robust import (
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    IBPClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    TRADESClassifier,
)

# Small budgets keep the ~55 checks per estimator fast; the checks' data are tiny.
ESTIMATORS = [
    NaturalClassifier(max_epochs=20, random_state=0),
    ATClassifier(max_epochs=20, attack_steps=2, random_state=0),
    TRADESClassifier(max_epochs=20, attack_steps=2, random_state=0),
    SCOREClassifier(max_epochs=20, attack_steps=2, random_state=0),
    RSTClassifier(max_epochs=20, attack_steps=2, random_state=0),
    GRClassifier(max_epochs=20, random_state=0),
    LLRClassifier(max_epochs=20, attack_steps=2, random_state=0),
    FastATClassifier(max_epochs=20, random_state=0),
    IBPClassifier(max_epochs=20, random_state=0),
]

# Every check passes: no expected failures are declared.
EXPECTED_FAILED_CHECKS = {}

# The checks sklearn repeats on read-only memory maps (check_classifiers_train,
# check_estimators_pickle): the input handling they test is the base class's, shared by
# every classifier, so the fast suite runs them for these two (one natural, one
# adversarial) and `make test-all` for all.
READ_ONLY_FAST = (NaturalClassifier, TRADESClassifier)


def _marked_slow(checks):
    """scikit-learn's own parametrisation, the other classifiers' read-only repeats slow."""
    argnames, cases = checks.args
    marked = []
    for case in cases:
        if not hasattr(case, "values"):  # a plain (estimator, check) pair
            case = pytest.param(*case)
        estimator, check = case.values
        if (getattr(check, "keywords", {}).get("readonly_memmap")
                and not isinstance(estimator, READ_ONLY_FAST)):
            case = pytest.param(*case.values, marks=[*case.marks, pytest.mark.slow],
                                id=case.id)
        marked.append(case)
    return pytest.mark.parametrize(argnames, marked, **checks.kwargs)


@_marked_slow(parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS))
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""scikit-learn's own estimator contract, run over every estimator."""

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


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""The papers' image networks (issue 33): PreAct ResNet-18 and WideResNet, by class and by
name in the estimators, with the input normalisation inside. The paper-sized networks
are counted on the meta device (no memory); everything trained here is a WRN-10-1 or
smaller on 8x8 digits, a fraction of a second per fit."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

import sklearn_robust.estimators as estimators
from sklearn_robust import (
    IBPClassifier,
    NaturalClassifier,
    RobustNetClassifier,
    TRADESClassifier,
)
from sklearn_robust.estimators import PreActResNet18, WideResNet
from sklearn_robust.metrics import certified_accuracy_score, robust_accuracy_score
from sklearn_robust.persistence import load_model, save_model
from sklearn_robust.utils import FitStreams, drawing_from, mode_independent
from sklearn_robust.verify import network_layers

TINY = dict(module="wideresnet", module__depth=10, module__widen_factor=1)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def digits(digits_images):
    X_train, X_test, y_train, y_test = digits_images
    return X_train[:240], y_train[:240], X_test[:60], y_test[:60]


# ---------------------------------------------------------------- the architectures
@pytest.mark.parametrize("build,expected", [
    (lambda: PreActResNet18(n_classes=10), 11_172_170),   # Rice et al. 2020
    (lambda: WideResNet(depth=34, widen_factor=10), 46_160_474),  # TRADES, SCORE
    (lambda: WideResNet(depth=28, widen_factor=10), 36_479_194),
    (lambda: WideResNet(depth=16, widen_factor=4), 2_748_890),
], ids=["PreActResNet-18", "WRN-34-10", "WRN-28-10", "WRN-16-4"])
def test_trainable_parameters_are_the_papers(build, expected):
    with torch.device("meta"):
        net = build()
    assert all(p.is_meta for p in net.parameters())  # counted without memory
    assert trainable(net) == expected


def test_meta_count_is_the_real_networks_count():
    real = WideResNet(depth=16, widen_factor=4)
    assert not any(p.is_meta for p in real.parameters())
    assert trainable(real) == 2_748_890


@pytest.mark.parametrize("net,blocks,projections,width", [
    (PreActResNet18(), 8, 3, 512),
    (WideResNet(depth=16, widen_factor=2), 6, 3, 128),
    (WideResNet(depth=10, widen_factor=1), 3, 2, 64),  # 16 -> 16: identity shortcut
])
def test_stages_blocks_and_shortcuts(net, blocks, projections, width):
    assert len(net.stages) == blocks
    assert sum(block.shortcut is not None for block in net.stages) == projections
    assert net.linear.in_features == net.bn.num_features == width
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.bias is None for conv in convs)  # BatchNorm's shift follows each


def test_stride_two_blocks_halve_the_resolution():
    net = WideResNet(depth=10, widen_factor=1, in_channels=3)
    sizes = []
    hooks = [block.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-2:]))
             for block in net.stages]
    net(torch.rand(2, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert [tuple(s) for s in sizes] == [(32, 32), (16, 16), (8, 8)]


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 8, 12), (8, 8)])
def test_any_image_size_and_a_channelless_batch(shape):
    channels = 1 if len(shape) == 2 else shape[0]
    for net in (PreActResNet18(n_classes=4, in_channels=channels),
                WideResNet(depth=10, widen_factor=1, n_classes=4, in_channels=channels)):
        out = net(torch.rand(3, *shape))
        assert out.shape == (3, 4) and torch.isfinite(out).all()


def test_wideresnet_is_initialised_as_the_reference():
    torch.manual_seed(0)
    net = WideResNet(depth=10, widen_factor=4)
    conv = net.stages[1].conv1  # 64 -> 128 channels, 3x3
    assert abs(conv.weight.std().item() - (2 / (9 * 128)) ** 0.5) < 0.002  # N(0, 2/fan_out)
    assert torch.count_nonzero(net.linear.bias) == 0
    assert torch.equal(net.bn.weight, torch.ones(256))


# ---------------------------------------------------------------- normalisation inside
def test_normalisation_is_the_first_operation_and_no_parameter():
    mean, std = torch.tensor(CIFAR_MEAN), torch.tensor(CIFAR_STD)
    torch.manual_seed(0)
    inside = WideResNet(depth=10, widen_factor=1, mean=CIFAR_MEAN, std=CIFAR_STD).eval()
    torch.manual_seed(0)
    plain = WideResNet(depth=10, widen_factor=1).eval()
    assert trainable(inside) == trainable(plain)
    assert {"normalise.mean", "normalise.std"} <= set(inside.state_dict())
    x = torch.rand(4, 3, 8, 8)
    expected = plain((x - mean[:, None, None]) / std[:, None, None])
    torch.testing.assert_close(inside(x), expected)
    assert not torch.allclose(plain(x), expected)  # the normalisation changes the output


def test_a_scalar_mean_and_std_serve_every_channel_and_either_alone_works():
    x = torch.rand(2, 3, 8, 8)
    torch.manual_seed(0)
    both = PreActResNet18(mean=0.5, std=0.25).eval()
    torch.manual_seed(0)
    plain = PreActResNet18().eval()
    torch.testing.assert_close(both(x), plain((x - 0.5) / 0.25))
    assert torch.equal(PreActResNet18(std=2.0).normalise.mean, torch.zeros(1, 3, 1, 1))
    assert PreActResNet18().normalise is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(mean=(0.5, 0.5)), "mean has 2 values, but the network takes in_channels=3"),
    (dict(std=(1.0, 0.0, 1.0)), "std must be > 0"),
    (dict(std=-1.0), "std must be > 0"),
    (dict(mean="red"), "mean must be a number or a sequence"),
    (dict(mean=[[0.5, 0.5, 0.5]]), "mean must be a number or a sequence"),
    (dict(mean=True), "mean must be a number or a sequence"),
    (dict(std=float("nan")), "std must be finite"),
    (dict(depth=12), "depth must be 6 n \\+ 4"),
    (dict(depth=4), "depth must be 6 n \\+ 4"),
    (dict(depth=34.0), "'depth' parameter of WideResNet"),
    (dict(widen_factor=0), "'widen_factor' parameter of WideResNet"),
    (dict(n_classes=0), "'n_classes' parameter of WideResNet"),
    (dict(in_channels=True), "'in_channels' parameter of WideResNet"),
])
def test_bad_arguments_are_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WideResNet(**{"depth": 10, "widen_factor": 1, **kwargs})


# ---------------------------------------------------------------- seeds, modes, precision
def test_same_stream_same_weights_and_the_global_stream_untouched():
    def weights():
        with drawing_from(FitStreams(0)):
            return WideResNet(depth=10, widen_factor=1).state_dict()
    state = torch.get_rng_state()
    first, second = weights(), weights()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(first[k], second[k]) for k in first)
    with drawing_from(FitStreams(1)):
        other = WideResNet(depth=10, widen_factor=1).state_dict()
    assert not torch.equal(first["stem.weight"], other["stem.weight"])


def test_the_networks_declare_their_forward_mode_free_but_batchnorm_is_not():
    assert PreActResNet18.mode_independent_forward and WideResNet.mode_independent_forward
    assert not mode_independent(WideResNet(depth=10, widen_factor=1))


def test_bfloat16_autocast_and_channels_last_inputs():
    net = WideResNet(depth=10, widen_factor=2, mean=CIFAR_MEAN, std=CIFAR_STD).eval()
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    reference = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(x)
    assert low.dtype == torch.bfloat16
    assert (low.float() - reference).abs().max() < 0.05 * (1 + reference.abs().max())
    low.float().sum().backward()  # attacks need the input gradient under autocast
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(net(x.detach().to(memory_format=torch.channels_last)),
                               reference.detach(), rtol=1e-4, atol=1e-5)
    net.to(memory_format=torch.channels_last)
    torch.testing.assert_close(net(x.detach()), reference.detach(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- by name in the estimators
CLASSIFIERS = [getattr(estimators, name) for name in estimators.__all__
               if isinstance(getattr(estimators, name), type)
               and issubclass(getattr(estimators, name), RobustNetClassifier)
               and name not in ("IBPClassifier", "RobustNetClassifier",
                                "AdversarialNetClassifier", "ThreatNetClassifier")]


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_every_classifier_builds_the_named_network_from_the_data(cls, digits):
    X, y, _, _ = digits
    params = dict(TINY, max_epochs=1, batch_size=32, random_state=0)
    if "attack_steps" in cls().get_params():
        params["attack_steps"] = 1
    clf = cls(**params).fit(X[:64], y[:64])
    assert type(clf.module_) is WideResNet
    assert clf.module_.stem.in_channels == 1 and clf.module_.linear.out_features == 10
    assert np.isfinite(clf.history[:, "train_loss"]).all()


def test_preactresnet18_by_name_on_three_channels():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3, 8, 8).astype(np.float32)
    y = np.arange(40) % 4
    clf = NaturalClassifier(module="preactresnet18", max_epochs=1, random_state=0)
    clf.fit(X, y)
    assert type(clf.module_) is PreActResNet18 and clf.module_.linear.out_features == 4
    assert clf.predict_proba(X).shape == (40, 4)


def test_flat_rows_are_reshaped_by_input_shape(digits_flat):
    X, _, y, _ = digits_flat
    clf = NaturalClassifier(input_shape=(1, 8, 8), max_epochs=1, random_state=0, **TINY)
    clf.fit(X[:64], y[:64])
    reshape, network = clf.module_
    assert type(reshape).__name__ == "Reshape" and type(network) is WideResNet
    assert network.stem.in_channels == 1


def test_channelless_images_and_set_params_on_a_fitted_net(digits):
    X, y, X_test, _ = digits
    clf = NaturalClassifier(max_epochs=1, random_state=0, **TINY).fit(X[:64, 0], y[:64])
    assert clf.module_.stem.in_channels == 1  # (N, 8, 8): one channel
    assert clf.predict(X_test[:, 0]).shape == (len(X_test),)
    clf.set_params(module__depth=16)  # skorch rebuilds the network from the recorded data
    assert clf.module_.depth == 16 and len(clf.module_.stages) == 6


@pytest.mark.parametrize("params,data,match", [
    (dict(module="resnet50"), "images", "unknown network module='resnet50'; the names are "
                                        "'preactresnet18', 'wideresnet'"),
    (dict(TINY), "flat", "flat rows of 64 features: give input_shape"),
    (dict(TINY, module__in_channels=3), "images", "module__in_channels=3 disagrees"),
    (dict(TINY, module__n_classes=3), "images", "module__n_classes=3 disagrees"),
    (dict(TINY, module__depth=12), "images", "depth must be 6 n \\+ 4"),
    (dict(TINY, module__std=0.0), "images", "std must be > 0"),
])
def test_named_network_errors_before_training(params, data, match, digits):
    X, y, _, _ = digits
    X = X.reshape(len(X), -1) if data == "flat" else X
    epochs = []
    clf = NaturalClassifier(max_epochs=1, callbacks=[("count", _EpochCounter(epochs))],
                            **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X[:32], y[:32])
    assert epochs == []


class _EpochCounter(Callback):
    """Records each epoch begun: none may begin after an error of the parameters."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append(len(net.history))


def test_named_network_without_data_needs_classes_and_takes_in_channels():
    with pytest.raises(ValueError, match="classes=\\[...\\] for the labels"):
        NaturalClassifier(**TINY).initialize()
    net = NaturalClassifier(classes=[0, 1, 2], module__in_channels=1, **TINY).initialize()
    assert net.module_.stem.in_channels == 1 and net.module_.linear.out_features == 3


def test_restore_idiom_with_a_named_network(digits, tmp_path):
    X, y, X_test, _ = digits
    fitted = NaturalClassifier(max_epochs=1, random_state=0, **TINY).fit(X, y)
    fitted.save_params(f_params=tmp_path / "w.pt")
    net = NaturalClassifier(classes=list(range(10)), module__in_channels=1,
                            **TINY).initialize()
    net.load_params(f_params=tmp_path / "w.pt")
    np.testing.assert_array_equal(net.predict_proba(X_test), fitted.predict_proba(X_test))


def test_seeded_fits_are_reproducible(digits):
    X, y, _, _ = digits
    fit = lambda: TRADESClassifier(max_epochs=1, attack_steps=1, random_state=3,  # noqa: E731
                                   **TINY).fit(X[:96], y[:96]).module_.state_dict()
    first, second = fit(), fit()
    assert all(torch.equal(first[k], second[k]) for k in first)


# ---------------------------------------------------------------- BatchNorm under attack
@pytest.mark.parametrize("train_mode", [True, False], ids=["train-mode", "eval-mode"])
def test_trades_fit_then_attacks_leave_batchnorm_alone(digits, train_mode):
    X, y, X_test, y_test = digits
    clf = TRADESClassifier(eps=0.1, bounds=(0.0, 1.0), max_epochs=2, attack_steps=2,
                           batch_size=32, random_state=0, **TINY).fit(X, y)
    norms = [m for m in clf.module_.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.num_batches_tracked > 0 for m in norms)  # training updated them
    clean = clf.score(X_test, y_test)  # skorch's prediction leaves the network in eval mode
    clf.module_.train(train_mode)
    state = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    modes = [m.training for m in clf.module_.modules()]
    robust = robust_accuracy_score(clf, X_test, y_test, eps=0.1, attack="pgd", steps=3,
                                   random_state=0)
    assert 0.0 <= robust <= clean
    after = clf.module_.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)  # running stats included
    assert [m.training for m in clf.module_.modules()] == modes


# ---------------------------------------------------------------- persistence and search
def test_model_file_and_pickle_round_trip_a_named_network(digits, tmp_path):
    X, y, X_test, _ = digits
    clf = NaturalClassifier(module="preactresnet18", module__mean=0.5, module__std=0.25,
                            max_epochs=1, batch_size=32, random_state=0).fit(X[:64], y[:64])
    expected = clf.predict_proba(X_test)
    save_model(clf, tmp_path / "preact.srm")
    loaded = load_model(tmp_path / "preact.srm")
    assert type(loaded.module_) is PreActResNet18
    assert loaded.module_.normalise.std_values == (0.25,)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X_test),
                                  expected)


def test_model_file_stores_the_network_class_itself(digits, tmp_path):
    """``module=WideResNet`` (the class, not its name) is saved by name and read back."""
    X, y, X_test, _ = digits
    clf = NaturalClassifier(module=WideResNet, module__depth=10, module__widen_factor=1,
                            module__in_channels=1, module__n_classes=10, max_epochs=1,
                            batch_size=32, random_state=0).fit(X[:64], y[:64])
    save_model(clf, tmp_path / "wrn.srm")
    loaded = load_model(tmp_path / "wrn.srm")
    assert loaded.module is WideResNet and type(loaded.module_) is WideResNet
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))


def test_clone_and_grid_search_set_the_depth(digits):
    X, y, _, _ = digits
    clf = NaturalClassifier(max_epochs=1, batch_size=32, random_state=0, **TINY)
    assert clone(clf).get_params()["module__depth"] == 10
    assert clone(clf).set_params(module__depth=16).get_params()["module__depth"] == 16
    search = GridSearchCV(clf, {"module__depth": [10, 16]}, cv=2).fit(X[:96], y[:96])
    assert sorted(search.cv_results_["param_module__depth"]) == [10, 16]
    best = search.best_params_["module__depth"]
    assert search.best_estimator_.module_.depth == best
    assert len(search.best_estimator_.module_.stages) == 3 * (best - 4) // 6


# ---------------------------------------------------------------- certification refused
def test_verifiers_refuse_the_residual_networks_by_name(digits):
    X, y, X_test, y_test = digits
    with pytest.raises(TypeError, match="PreActResNet18 cannot be verified: it is a "
                                        "residual network"):
        network_layers(PreActResNet18(in_channels=1), (1, 8, 8))
    clf = NaturalClassifier(max_epochs=1, random_state=0, **TINY).fit(X[:64], y[:64])
    with pytest.raises(TypeError, match="WideResNet cannot be verified"):
        certified_accuracy_score(clf, X_test, y_test, eps=0.05, method="ibp")


def test_certified_training_refuses_batchnorm_before_a_step(digits):
    X, y, _, _ = digits
    epochs = []
    clf = IBPClassifier(eps=0.05, max_epochs=1, callbacks=[("count", _EpochCounter(epochs))],
                        **TINY)
    with pytest.raises(TypeError, match="certified training does not support BatchNorm"):
        clf.fit(X[:32], y[:32])
    assert epochs == []

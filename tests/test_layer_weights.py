"""Learnt layer weights: the weighted sum finds the block that carries the labels, inside the shipped estimator."""

from __future__ import annotations

import numpy as np
import pytest

from ser_live.training.estimator import ModelParams, fit_estimator
from ser_live.training.layer_weights import LayerWeightedSum


def _blocks_with_one_informative(n_windows: int = 600, n_blocks: int = 4, width: int = 8, informative: int = 2):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n_windows)
    X = rng.normal(size=(n_windows, n_blocks, width))
    X[:, informative, :3] += 2.0 * np.eye(3)[labels]
    return X.reshape(n_windows, -1), labels


def test_the_weights_go_to_the_block_that_carries_the_labels():
    X, labels = _blocks_with_one_informative()
    weighting = LayerWeightedSum(4).fit(X, labels)
    assert weighting.weights_.sum() == pytest.approx(1.0)
    assert weighting.weights_.argmax() == 2 and weighting.weights_[2] > 0.9
    summed = weighting.transform(X)
    assert summed.shape == (600, 8)
    expected = np.einsum("k,nkd->nd", weighting.weights_, X.reshape(600, 4, 8))
    np.testing.assert_allclose(summed, expected, rtol=1e-4, atol=1e-4)


def test_columns_that_do_not_divide_into_the_blocks_are_refused():
    with pytest.raises(ValueError, match="do not divide into 4 equal blocks"):
        LayerWeightedSum(4).fit(np.zeros((10, 6)), np.arange(10) % 2)


def test_the_estimator_with_layer_weights_learns_and_records_the_option():
    X, labels = _blocks_with_one_informative()
    params = ModelParams(hidden_layer_sizes=(16,), n_seeds=1, early_stopping=False, layer_blocks=4)
    estimator = fit_estimator(X, labels, np.arange(len(labels)) // 3, params)
    assert estimator.named_steps["layers"].weights_.argmax() == 2
    assert (estimator.predict(X) == labels).mean() > 0.75  # chance 1/3; the Bayes rate is about 0.85
    assert params.to_dict()["layer_blocks"] == 4
    assert "layer_blocks" not in ModelParams().to_dict()  # older records and their fingerprints keep their form

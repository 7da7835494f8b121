"""Learnt layer weights: a softmax-weighted sum of encoder blocks' pooled features, fitted with a linear probe."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["LayerWeightedSum"]


class LayerWeightedSum(TransformerMixin, BaseEstimator):
    """Replace ``n_blocks`` equal blocks of columns by their weighted sum, the weights learnt from the labels.

    The weights are a softmax over one logit per block (so they are positive and sum to one, as in the
    layer-weighted sums that speech benchmarks put over self-supervised encoders), fitted jointly with a
    multinomial logistic regression on the weighted sum by L-BFGS; only the weights are kept. Fitting on the
    training speakers alone (inside a fold) keeps the weighting speaker-independent. It sits in the estimator's
    pipeline after the scaler.

    Parameters
    ----------
    n_blocks : int
        Blocks the columns divide into, in order (each ``n_features / n_blocks`` wide).
    alpha : float
        L2 penalty of the probe's coefficients (per mean sample weight).
    max_iter : int
        L-BFGS iterations.
    """

    def __init__(self, n_blocks: int = 6, *, alpha: float = 1e-2, max_iter: int = 200) -> None:
        self.n_blocks = n_blocks
        self.alpha = alpha
        self.max_iter = max_iter

    def _blocks(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or self.n_blocks < 1 or X.shape[1] % self.n_blocks:
            raise ValueError(f"{X.shape[1] if X.ndim == 2 else X.shape} columns do not divide into "
                             f"{self.n_blocks} equal blocks")
        return X.reshape(X.shape[0], self.n_blocks, -1)

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LayerWeightedSum:
        """Learn the block weights (``weights_``, summing to one) on windows ``X`` with labels ``y``."""
        from scipy.optimize import minimize

        blocks = self._blocks(X)
        classes, label = np.unique(np.asarray(y), return_inverse=True)
        share = np.ones(len(label)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        share = share / share.sum()
        width, n_classes = blocks.shape[2], classes.size
        onehot = np.eye(n_classes)[label]

        def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
            logits, coef, intercept = _unpack(theta, self.n_blocks, width, n_classes)
            mix = _softmax(logits)
            summed = np.einsum("k,nkd->nd", mix, blocks)
            proba = _softmax(summed @ coef + intercept, axis=1)
            loss = -np.sum(share * np.log(proba[np.arange(len(label)), label] + 1e-12))
            loss += 0.5 * self.alpha * np.sum(coef * coef)
            residual = (proba - onehot) * share[:, None]
            per_block = np.einsum("nd,nkd->k", residual @ coef.T, blocks)
            gradient = np.concatenate([mix * (per_block - mix @ per_block),
                                       (summed.T @ residual + self.alpha * coef).ravel(), residual.sum(axis=0)])
            return float(loss), gradient

        start = np.zeros(self.n_blocks + (width + 1) * n_classes)
        result = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B",
                          options={"maxiter": self.max_iter})
        self.weights_ = _softmax(result.x[: self.n_blocks])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The weighted sum of the blocks, shape ``(n_windows, n_features / n_blocks)``."""
        return np.einsum("k,nkd->nd", self.weights_.astype(np.float32), self._blocks(X))


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _unpack(theta: np.ndarray, n_blocks: int, width: int, n_classes: int) -> tuple[np.ndarray, ...]:
    logits = theta[:n_blocks]
    coef = theta[n_blocks : n_blocks + width * n_classes].reshape(width, n_classes)
    return logits, coef, theta[n_blocks + width * n_classes :]

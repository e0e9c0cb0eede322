"""Per-example membership inference on the forget classes, fitted without a single forget-class image.

The population attack (:func:`~zeroshot_unlearn.audit.metrics.mia_forget`) learns one rule from forget-class
members and non-members. A per-example attack asks of each forget-class training image on its own: is its
score higher than this image's score would be if the model had never trained on it? Quantile regression
answers that without shadow models (Bertran et al., "Scalable membership inference attacks via quantile
regression", NeurIPS 2023): a regression fitted on *non-member* images alone predicts, from an image's
features, where its score would lie as a non-member; an image far above its prediction is called a member.
Shadow models must be trained on the class they attack and fail on classes they never saw; this regression
is fitted on the retained classes' test images only, so it needs no model or image of the forget classes.

Here the score is the logit margin of the image's label (its logit minus the largest other), the one LiRA
uses; the regression predicts its mean and spread from the audited model's own features (the input of its
head, reduced by PCA), with gradient-boosted trees; an image's membership score is how many predicted
spreads its margin lies above the predicted mean. Members are the forget-class training images, non-members
the forget-class test images, as for the population attack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .metrics import Outputs, tpr_at_fpr

MAX_REFERENCE = 2000
"""Retained-class non-members the regression is fitted on at most (a seeded sample of them)."""


def margin_scores(out: Outputs) -> np.ndarray:
    """Per image: the logit of its label minus the largest other logit (masked logits clamped to -1e4)."""
    logits = out.logits.float().clamp(min=-1e4)
    own = logits.gather(1, out.y[:, None]).squeeze(1)
    others = logits.scatter(1, out.y[:, None], float("-inf")).max(1).values
    return (own - others).numpy()


@dataclass
class PerExampleAttack:
    """The quantile-regression attack's figures on one model (``audit`` rows ``qmia_*``)."""

    auc: float
    tpr_at_1fpr: float
    tpr_at_01fpr: float
    calibrated_tpr: float
    """Members called members at the threshold the regression sets for 1% FPR on the retained classes."""
    calibrated_fpr: float
    """Forget-class non-members called members at that threshold: 1% only where the calibration carries over
    to classes the regression never saw (on digits {3, 7} it does not: 19% for a model that never saw the
    members); the ROC figures above compare with the forget classes' own non-members instead."""
    member_scores: np.ndarray = field(repr=False)
    nonmember_scores: np.ndarray = field(repr=False)
    seconds: float = 0.0


def _regression_inputs(reference: np.ndarray, *others: np.ndarray, dims: int, seed: int):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(reference)
    pca = PCA(n_components=min(dims, reference.shape[1], len(reference) - 1), random_state=seed)
    pca.fit(scaler.transform(reference))
    return [pca.transform(scaler.transform(a)) for a in (reference, *others)]


def quantile_attack(members: Outputs, nonmembers: Outputs, reference: Outputs, *, seed: int = 0,
                    dims: int = 32, folds: int = 3) -> PerExampleAttack:
    """Score each forget-class member and non-member against the regression fitted on ``reference``
    (retained-class non-members: the test images of the retained classes).

    The regression's mean and spread come from two gradient-boosted models (the margin, then the log of its
    absolute residual); the calibrated threshold is the 99th percentile of the reference's own scores,
    out of fold (``folds``-fold cross-fitting), so it is not read off the images it was fitted on.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import KFold

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(reference.y))[:MAX_REFERENCE])
    ref_x = reference.features.numpy()[rows]
    ref_s = margin_scores(reference)[rows]
    ref_x, mem_x, non_x = _regression_inputs(ref_x, members.features.numpy(), nonmembers.features.numpy(),
                                             dims=dims, seed=seed)

    def fit(x, s):
        mean = HistGradientBoostingRegressor(max_iter=100, random_state=seed).fit(x, s)
        residual = np.log(np.abs(s - mean.predict(x)) + 1e-6)
        spread = HistGradientBoostingRegressor(max_iter=100, random_state=seed).fit(x, residual)
        # The mean absolute residual of a normal is 0.8 sigma; exp(E log|r|) is 0.53 sigma: scale back up.
        return lambda z: (mean.predict(z), np.exp(spread.predict(z)) / 0.53)

    out_of_fold = np.empty(len(ref_s))
    for train_rows, held_rows in KFold(folds, shuffle=True, random_state=seed).split(ref_x):
        mu, sigma = fit(ref_x[train_rows], ref_s[train_rows])(ref_x[held_rows])
        out_of_fold[held_rows] = (ref_s[held_rows] - mu) / sigma
    predict = fit(ref_x, ref_s)
    mem_mu, mem_sigma = predict(mem_x)
    non_mu, non_sigma = predict(non_x)
    member_scores = (margin_scores(members) - mem_mu) / mem_sigma
    nonmember_scores = (margin_scores(nonmembers) - non_mu) / non_sigma
    threshold = float(np.quantile(out_of_fold, 0.99))
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    scores = np.concatenate([member_scores, nonmember_scores])
    fpr, tpr, _ = roc_curve(labels, scores)
    return PerExampleAttack(
        auc=float(roc_auc_score(labels, scores)), tpr_at_1fpr=tpr_at_fpr(fpr, tpr, 0.01),
        tpr_at_01fpr=tpr_at_fpr(fpr, tpr, 0.001),
        calibrated_tpr=float((member_scores > threshold).mean()),
        calibrated_fpr=float((nonmember_scores > threshold).mean()),
        member_scores=member_scores, nonmember_scores=nonmember_scores,
        seconds=time.perf_counter() - start)


__all__ = ["quantile_attack", "margin_scores", "PerExampleAttack", "MAX_REFERENCE"]

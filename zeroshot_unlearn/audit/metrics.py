"""The metrics of PROTOCOL.md that go beyond accuracy: MIA, probe, rebound, relearn."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.datasets import ImageTensorDataset
from ..metrics import forget_retain_accuracy


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def attack_features(model: nn.Module, data: ImageTensorDataset) -> np.ndarray:
    """Per sample: loss, entropy and the sorted softmax vector (the MIA-forget features)."""
    # An output mask gives -inf logits; clamp so the features stay finite.
    logits = _logits(model, data.x).clamp(min=-1e4)
    log_p = F.log_softmax(logits, 1)
    p = log_p.exp()
    loss = F.nll_loss(log_p, data.y, reduction="none")
    entropy = -(p * log_p).sum(1)
    sorted_p = p.sort(1, descending=True).values
    return torch.cat([loss[:, None], entropy[:, None], sorted_p], 1).numpy()


def entropy_feature(model: nn.Module, data: ImageTensorDataset) -> np.ndarray:
    log_p = F.log_softmax(_logits(model, data.x).clamp(min=-1e4), 1)
    return (-(log_p.exp() * log_p).sum(1)).numpy()[:, None]


@dataclass
class AttackResult:
    auc: float
    tpr_at_1fpr: float
    roc: tuple[list[float], list[float]]


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float = 0.01) -> float:
    return float(np.max(tpr[fpr <= target])) if np.any(fpr <= target) else 0.0


def mia_forget(model: nn.Module, members: ImageTensorDataset, nonmembers: ImageTensorDataset,
               seed: int = 0) -> AttackResult:
    """Members (forget-class training images) vs non-members (forget-class test images).

    Logistic regression on standardised attack features, 5-fold cross-validated predictions,
    ROC AUC and TPR at 1% FPR. Classes are balanced by subsampling the larger side.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(members), len(nonmembers))
    feats = np.concatenate([attack_features(model, members)[rng.permutation(len(members))[:n]],
                            attack_features(model, nonmembers)[rng.permutation(len(nonmembers))[:n]]])
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_predict(clf, feats, labels, cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                               method="predict_proba")[:, 1]
    fpr, tpr, _ = roc_curve(labels, scores)
    return AttackResult(float(roc_auc_score(labels, scores)), tpr_at_fpr(fpr, tpr), (fpr.tolist(), tpr.tolist()))


def mia_ssd(model: nn.Module, retain_train: ImageTensorDataset, test_nonmembers: ImageTensorDataset,
            forget_train: ImageTensorDataset, seed: int = 0) -> float:
    """The classic score: entropy-feature logistic regression fit on retained members vs test
    non-members; the percentage of forget-class training images it calls "member"."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    n = min(len(retain_train), len(test_nonmembers))
    x = np.concatenate([entropy_feature(model, retain_train)[rng.permutation(len(retain_train))[:n]],
                        entropy_feature(model, test_nonmembers)[rng.permutation(len(test_nonmembers))[:n]]])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    clf = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(clf.predict(entropy_feature(model, forget_train)).mean() * 100)


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The input of the classifier head (timm's ``forward_head(..., pre_logits=True)`` where available)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        feats = model.forward_features(x[i:i + batch_size])
        try:
            feats = model.forward_head(feats, pre_logits=True)
        except TypeError:  # zoo models: forward_features already returns the pooled vector
            pass
        out.append(feats.flatten(1))
    return torch.cat(out)


def probe_df(model: nn.Module, train: ImageTensorDataset, test: ImageTensorDataset, forget: Sequence[int]) -> float:
    """Linear probe on frozen penultimate features (all classes of ``train``), accuracy on forget test images."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    x_train = scaler.fit_transform(penultimate_features(model, train.x).numpy())
    probe = LogisticRegression(C=1.0, solver="lbfgs", max_iter=3000).fit(x_train, train.y.numpy())
    forget_test = test.of_classes(forget)
    x_test = scaler.transform(penultimate_features(model, forget_test.x).numpy())
    return float((probe.predict(x_test) == forget_test.y.numpy()).mean() * 100)


def _finetune_steps(model: nn.Module, data: ImageTensorDataset, seed: int):
    """Yield after each SGD step (batch 32 with replacement, lr 0.01, momentum 0.9) on a copy of ``model``."""
    student = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    while True:
        rows = torch.randint(len(data), (32,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(student(data.x[rows]), data.y[rows]).backward()
        optimizer.step()
        yield student


def rebound_df(model: nn.Module, retain: ImageTensorDataset, test: ImageTensorDataset, forget: Sequence[int],
               seed: int = 0) -> float:
    """Df after len(retain)/32 fine-tuning steps on the retained subset."""
    steps = max(1, len(retain) // 32)
    for step, student in enumerate(_finetune_steps(model, retain, seed), 1):
        if step >= steps:
            return forget_retain_accuracy(student, test, forget)[0]
    raise AssertionError("unreachable")


def relearn_steps(model: nn.Module, forget_train: ImageTensorDataset, test: ImageTensorDataset,
                  forget: Sequence[int], target_df: float, *, seed: int = 0, cap: int = 1000,
                  check_every: int = 5) -> tuple[int, bool]:
    """Fine-tuning steps on 100 forget-class training images until Df >= ``target_df``; (steps, capped)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(forget_train), size=min(100, len(forget_train)), replace=False)
    subset = forget_train.subset(np.sort(rows))
    forget_test = test.of_classes(forget)
    for step, student in enumerate(_finetune_steps(model, subset, seed), 1):
        if step % check_every == 0:
            df, _ = forget_retain_accuracy(student, forget_test, forget)
            if df >= target_df:
                return step, False
        if step >= cap:
            return cap, True
    raise AssertionError("unreachable")

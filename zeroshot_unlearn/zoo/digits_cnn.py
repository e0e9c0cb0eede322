"""The small CNN of the embedded ``digits`` demo (28x28 grey MNIST digits, ~24k parameters)."""

from __future__ import annotations

import torch
import torch.nn as nn


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitsCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: int = 16):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 4 * width
        self.features = nn.Sequential(
            *_conv_bn(in_chans, width), nn.MaxPool2d(2),
            *_conv_bn(width, 2 * width), nn.MaxPool2d(2),
            *_conv_bn(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(4 * width, num_classes)
        # timm's description of the stages (the activation closing each conv block): the audit probes each.
        self.feature_info = [dict(num_chs=width, reduction=1, module="features.2"),
                             dict(num_chs=2 * width, reduction=2, module="features.6"),
                             dict(num_chs=4 * width, reduction=4, module="features.10")]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

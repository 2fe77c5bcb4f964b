"""Test networks shared by several test modules."""

from torch import nn


class BNDropoutNet(nn.Module):
    """Every kind of state a measurement could disturb: BatchNorm statistics and Dropout.

    ``body[3]`` is the Dropout layer (tests flip its mode to get mixed modes).
    """

    def __init__(self, n_features=64, n_classes=10, hidden=32, dropout=0.5):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)
        )
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        return self.head(self.body(x))

"""A recurrent purchase model with a buy-till-you-die output layer.

A GRU reads a customer's last purchase days (gaps, age, spend, quantity) and an MLP their RFM
summary; together they give, per customer, a purchase rate ``lam`` (per week while active), a
dropout rate ``mu`` (per week) and the probability ``alive`` that they are still a customer.
Purchases in a window of H weeks then follow in closed form (a customer buys at rate lam until
an exponential lifetime with rate mu ends):

    expected purchases  E[N(H)] = alive * lam / mu * (1 - exp(-mu * H))
    P(N(H) > 0)                 = alive * lam / (lam + mu) * (1 - exp(-(lam + mu) * H))

so a model trained on the short windows that fit inside a calibration period answers for any
horizon. A fourth output is the spend per purchase day (log dollars).
"""

from __future__ import annotations

import torch
from torch import nn

SEQUENCE_FEATURES = 4
STATIC_FEATURES = 7


class PurchaseNet(nn.Module):
    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.gru = nn.GRU(SEQUENCE_FEATURES, hidden, batch_first=True)
        self.static = nn.Sequential(nn.Linear(STATIC_FEATURES, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 4))

    def forward(self, sequence: torch.Tensor, static: torch.Tensor) -> dict[str, torch.Tensor]:
        _, state = self.gru(sequence)
        out = self.head(torch.cat([state[-1], self.static(static)], dim=1))
        return {
            "lam": nn.functional.softplus(out[:, 0]) + 1e-4,
            "mu": nn.functional.softplus(out[:, 1] - 3.0) + 1e-5,
            "alive": torch.sigmoid(out[:, 2] + 2.0),
            "log_spend": out[:, 3],
        }


def expected_purchases(params: dict[str, torch.Tensor], horizon: torch.Tensor) -> torch.Tensor:
    lam, mu, alive = params["lam"], params["mu"], params["alive"]
    return alive * lam / mu * (1 - torch.exp(-mu * horizon))


def probability_any(params: dict[str, torch.Tensor], horizon: torch.Tensor) -> torch.Tensor:
    lam, mu, alive = params["lam"], params["mu"], params["alive"]
    return alive * lam / (lam + mu) * (1 - torch.exp(-(lam + mu) * horizon))


def loss(
    params: dict[str, torch.Tensor], horizon: torch.Tensor, purchases: torch.Tensor, spend: torch.Tensor
) -> torch.Tensor:
    """Poisson likelihood of the window's purchase count, cross-entropy of "bought at all", and
    the squared error of log spend per purchase day where there were purchases."""
    expected = expected_purchases(params, horizon).clamp_min(1e-6)
    count_nll = (expected - purchases * torch.log(expected)).mean()
    any_p = probability_any(params, horizon).clamp(1e-6, 1 - 1e-6)
    bought = (purchases > 0).float()
    any_nll = nn.functional.binary_cross_entropy(any_p, bought)
    mask = purchases > 0
    spend_error = (
        ((params["log_spend"][mask] - torch.log1p(spend[mask] / purchases[mask])) ** 2).mean()
        if mask.any()
        else torch.zeros((), device=purchases.device)
    )
    return count_nll + any_nll + 0.1 * spend_error

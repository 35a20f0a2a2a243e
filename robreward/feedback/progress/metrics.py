"""Metrics of a progress model on demo episodes (robreward.feedback.progress.model): value-order correlation
(Spearman of Φ against time along each success ramp), AUROC of final progress (successes vs failures), and the
per-episode curves behind them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from robreward.feedback.progress.model import Episode, ProgressNet


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 where either side is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
    """P(a positive scores above a negative), ties one half (Mann-Whitney); None when a side is empty."""
    if len(positives) == 0 or len(negatives) == 0:
        return None
    diff = np.asarray(positives, float)[:, None] - np.asarray(negatives, float)[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


@torch.no_grad()
def progress_curves(net: ProgressNet, episodes: list[Episode]) -> list[np.ndarray]:
    """Φ per obs row of each episode (image inputs: of its frames, attach_frames)."""
    curves = []
    for e in episodes:
        if net.uses_image and e.frames is None:
            raise ValueError("an image progress model scores frames: render the episodes first (attach_frames)")
        curves.append(net.phi(torch.from_numpy(e.obs), e.frames if net.uses_image else None).cpu().numpy())
    return curves


def episode_metrics(net: ProgressNet | None, episodes: list[Episode], curves: list[np.ndarray] | None = None) -> dict:
    """value_order_correlation (mean Spearman of Φ vs time over success ramps), final_progress_auroc, and the
    per-episode numbers behind them; of ``net``'s Φ, or of ``curves`` (Φ per step of each episode) given."""
    if curves is None:
        if net is None:
            raise ValueError("episode_metrics needs a net or the curves")
        curves = progress_curves(net, episodes)
    rows, rhos = [], []
    for e, curve in zip(episodes, curves):
        rho = spearman(np.arange(e.first_success + 1), curve[:e.first_success + 1]) if e.success else None
        if rho is not None:
            rhos.append(rho)
        rows.append({"source": e.source, "episode": e.index, "success": e.success, "first_success": e.first_success,
                     "spearman": rho, "phi_start": float(curve[0]), "phi_final": float(curve[-1])})
    finals_win = np.array([c[-1] for e, c in zip(episodes, curves) if e.success])
    finals_loss = np.array([c[-1] for e, c in zip(episodes, curves) if not e.success])
    return {"value_order_correlation": float(np.mean(rhos)) if rhos else None,
            "value_order_correlation_min": float(np.min(rhos)) if rhos else None,
            "final_progress_auroc": auroc(finals_win, finals_loss),
            "successes": int(len(finals_win)), "failures": int(len(finals_loss)), "episodes": rows}


@torch.no_grad()
def outside_range(net, episodes: list[Episode], names: list[str], margin: float = 0.02) -> dict | None:
    """Where the episodes' states leave the range of the state features ``net`` was fitted on (an ensemble: the
    union of its members' ranges), by more than ``margin`` of that range's width: there Φ is the net's
    extrapolation, which PPO can climb (docs/progress.md "Past the demos' range"). {share_of_steps, features:
    {name: share of steps, the features that ever leave it, most first}}; None for a net without state inputs or
    one fitted before the range was kept."""
    from robreward.feedback.progress.ensemble import members_of

    nets = [m for m in members_of(net) if m.uses_state]
    if not nets or not all(torch.isfinite(m.feature_lo).all() for m in nets) or not episodes:
        return None
    lo = torch.stack([m.feature_lo for m in nets]).min(0).values
    hi = torch.stack([m.feature_hi for m in nets]).max(0).values
    tol = margin * (hi - lo)
    f = nets[0].state_features(torch.from_numpy(np.concatenate([e.obs for e in episodes])).to(lo.device))
    out = (f < lo - tol) | (f > hi + tol)
    shares = out.double().mean(0).tolist()
    by_feature = sorted(((n, round(s, 4)) for n, s in zip(names, shares) if s > 0), key=lambda x: -x[1])
    return {"share_of_steps": round(float(out.any(-1).double().mean()), 4), "features": dict(by_feature),
            "margin": margin}

"""What LLM calls cost: approximate prices per model, and the ``Ledger`` of tokens and cost that
every client of a run shares, with its spend cap. Part of robreward.codegen.llm (which re-exports
it); the ledger file is scrubbed of secrets like every file the LLM layer writes."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from robreward.codegen.llm_errors import BudgetExceeded
from robreward.codegen.secrets import redact
from robreward.fileio import atomic_write_text

# Approximate list prices in USD per 1M tokens (input, output), matched by longest model-name
# prefix ("gpt-4o-2024-08-06" -> "gpt-4o"; a newer family member without its own row gets the
# family's price). They drift: override with ``prices=`` where it matters. Unknown models
# (local servers) cost 0 and are listed in ``Ledger.unpriced_models``.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60), "gpt-4-turbo": (10.00, 30.00),
    "gpt-4.1": (2.00, 8.00), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50), "o3-mini": (1.10, 4.40), "o4-mini": (1.10, 4.40),
    "claude-3-haiku": (0.25, 1.25), "claude-3-5-haiku": (0.80, 4.00), "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00), "claude-3-7-sonnet": (3.00, 15.00), "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00), "claude-opus-4-5": (5.00, 25.00),
}


def write_json_scrubbed(path: Path, obj: Any, secrets: Sequence[str] = ()) -> None:
    """Write JSON to ``path`` via a temp file + os.replace, with every secret string scrubbed."""
    atomic_write_text(path, redact(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False), secrets))


def price_per_million(model: str, prices: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for ``model`` by longest prefix, or None if unknown."""
    table = {**PRICES_PER_MILLION, **(prices or {})}
    matches = [name for name in table if model == name or model.startswith(name + "-")]
    return table[max(matches, key=len)] if matches else None


@dataclass
class Ledger:
    """Running totals of tokens and cost shared by every client of a run, with a spend cap.

    ``check()`` runs before each HTTP request and raises ``BudgetExceeded`` once the accumulated
    totals have reached ``max_cost`` (USD) or ``max_tokens`` (prompt + completion). The cost of
    a request is only known after it, so the request that crosses the cap is recorded (it was
    paid for) and every later one is refused. With a ``path`` the ledger is saved as JSON after
    each request; ``Ledger.load`` resumes from it."""

    max_cost: float | None = None
    max_tokens: int | None = None
    path: Path | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0  # HTTP requests made (a complete() call may take several)
    cached_calls: int = 0  # complete() calls answered by the cache or a replay
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)
    unpriced_models: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    _SAVED = ("prompt_tokens", "completion_tokens", "cost_usd", "requests", "cached_calls",
              "by_model", "unpriced_models")

    @classmethod
    def load(cls, path: str | Path, max_cost: float | None = None, max_tokens: int | None = None) -> "Ledger":
        """The ledger saved at ``path`` (fresh if none), with the caps given now (so a resumed
        run may raise them)."""
        path = Path(path)
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return cls(max_cost=max_cost, max_tokens=max_tokens, path=path,
                   **{name: saved[name] for name in cls._SAVED if name in saved})

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def check(self) -> None:
        """Raise ``BudgetExceeded`` if the caps leave no room for another request."""
        if self.max_cost is not None and self.cost_usd >= self.max_cost:
            raise BudgetExceeded(f"LLM spend cap reached: ${self.cost_usd:.4f} spent of max_cost "
                                 f"${self.max_cost:.4f}; raise --max-cost and resume to continue")
        if self.max_tokens is not None and self.total_tokens >= self.max_tokens:
            raise BudgetExceeded(f"LLM token cap reached: {self.total_tokens} tokens used of max_tokens "
                                 f"{self.max_tokens}; raise --max-tokens and resume to continue")

    def record(self, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float,
               priced: bool = True) -> None:
        """Add one HTTP request's usage, then save."""
        with self._lock:
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "cost_usd": cost_usd, "requests": 1}
            row = self.by_model.setdefault(model, dict.fromkeys(usage, 0))
            for name, value in usage.items():
                setattr(self, name, getattr(self, name) + value)
                row[name] += value
            if not priced and model not in self.unpriced_models:
                self.unpriced_models.append(model)
            self.save()

    def record_cached(self) -> None:
        with self._lock:
            self.cached_calls += 1
            self.save()

    def to_dict(self) -> dict:
        return {"max_cost": self.max_cost, "max_tokens": self.max_tokens,
                **{name: getattr(self, name) for name in self._SAVED},
                "note": "cost_usd is approximate (robreward.codegen.llm.PRICES_PER_MILLION); "
                        "unpriced_models are counted at 0"}

    def save(self) -> None:
        if self.path is not None:
            write_json_scrubbed(Path(self.path), self.to_dict())

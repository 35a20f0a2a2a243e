"""The errors of robreward's LLM access (robreward.codegen.llm and its parts): one base class, so a
caller catches ``LLMError`` for anything an LLM call can raise."""

from __future__ import annotations


class LLMError(RuntimeError):
    """Base class of every error robreward.codegen.llm raises."""


class LLMConfigError(LLMError, ValueError):
    """The client cannot be built as asked (no key, bad spec, empty replay dir)."""


class LLMRequestError(LLMError):
    """A request failed for good: a non-retryable status, or retries exhausted.
    ``status`` is the HTTP status (None for timeouts and connection errors)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class BudgetExceeded(LLMError):
    """The ledger's ``max_cost`` or ``max_tokens`` is reached: stop cleanly, resume later
    with a higher cap (cached calls are free, so nothing already paid for is redone)."""


class ReplayMissError(LLMError):
    """A replay was asked for a request that the transcript does not hold."""

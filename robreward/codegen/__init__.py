"""Reward code from task text: LLM clients, code extraction, sandbox checks, evolutionary search."""

from robreward.codegen.llm import (
    PRICES_PER_MILLION,
    BudgetExceeded,
    Completion,
    Ledger,
    LLMClient,
    LLMConfigError,
    LLMError,
    LLMRequestError,
    ProviderClient,
    ReplayClient,
    ReplayMissError,
    RetryPolicy,
    make_client,
    price_per_million,
    request_key,
)

__all__ = [
    "PRICES_PER_MILLION",
    "BudgetExceeded",
    "Completion",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMRequestError",
    "Ledger",
    "ProviderClient",
    "ReplayClient",
    "ReplayMissError",
    "RetryPolicy",
    "make_client",
    "price_per_million",
    "request_key",
]

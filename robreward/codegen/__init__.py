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
from robreward.codegen.loop import (
    GenerateConfig,
    generate,
    load_config,
    train_candidates,
    training_stats,
)
from robreward.codegen.text_task import check_fitness_expression

__all__ = [
    "PRICES_PER_MILLION",
    "BudgetExceeded",
    "Completion",
    "GenerateConfig",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMRequestError",
    "Ledger",
    "ProviderClient",
    "ReplayClient",
    "ReplayMissError",
    "RetryPolicy",
    "check_fitness_expression",
    "generate",
    "load_config",
    "make_client",
    "price_per_million",
    "request_key",
    "train_candidates",
    "training_stats",
]

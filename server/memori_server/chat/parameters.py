"""Which upstream parameters a caller may set through `extra_json`.

An allow-list, not a deny-list: proxies such as LiteLLM read routing keys from the body
(`api_base`, `api_key`, `user_config`, `fallbacks`, ...), so any key a caller could add would
let them steer the operator's upstream and key. Only the OpenAI chat completions parameters
pass, plus what the operator adds with --extra-parameters (e.g. vLLM's `top_k`).
"""

from __future__ import annotations

from collections.abc import Iterable

# The optional numbers of ChatCompletionRequest, sent when the caller set them.
OPTIONAL_SCALARS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "seed")
# The typed fields of ChatCompletionRequest and what the RPC itself decides.
TYPED_PARAMETERS = frozenset(
    {
        "model",
        "messages",
        "stream",
        *OPTIONAL_SCALARS,
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "user",
    }
)
# OpenAI's `POST /v1/chat/completions` parameters without a typed field
# (tests/test_chat_parameters.py compares this with the openai SDK's own list).
OPENAI_EXTRA_PARAMETERS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "metadata",
        "modalities",
        "moderation",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "safety_identifier",
        "service_tier",
        "store",
        "stream_options",
        "top_logprobs",
        "verbosity",
        "web_search_options",
    }
)


def allowed_extra_parameters(operator_added: Iterable[str]) -> frozenset[str]:
    """The keys extra_json may carry: OpenAI's, plus the operator's (never a typed one)."""
    added = {name.strip() for name in operator_added if name.strip()}
    return (OPENAI_EXTRA_PARAMETERS | added) - TYPED_PARAMETERS

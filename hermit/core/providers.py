"""The provider registry: canonical names, aliases, default URLs and upstream quirks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Provider:
    """What Hermit knows about one upstream provider."""

    name: str
    base_url: str
    default_model: str
    aliases: tuple[str, ...] = ()
    chat_path: str = "/chat/completions"
    embeddings_path: str = "/embeddings"
    models_path: str = "/models"
    headers: Mapping[str, str] = field(default_factory=dict)
    local: bool = False  # runs on the operator's machine: free by default, no key needed
    limit_field: str = "max_tokens"  # where default_max_tokens goes
    strict_fields: bool = False  # upstream rejects unknown request fields

    @property
    def env_prefix(self) -> str:
        return "HERMIT_" + self.name.upper().replace("-", "_")


_GITHUB_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

PROVIDERS: tuple[Provider, ...] = (
    Provider("openai", "https://api.openai.com/v1", "gpt-4.1-mini", limit_field="max_completion_tokens"),
    Provider("openrouter", "https://openrouter.ai/api/v1", "anthropic/claude-sonnet-4"),
    Provider("anthropic", "https://api.anthropic.com/v1", "claude-sonnet-4-5"),
    Provider("deepseek", "https://api.deepseek.com/v1", "deepseek-chat"),
    Provider("ollama", "http://localhost:11434/v1", "deepseek-r1:32b", local=True),
    Provider("vllm", "http://localhost:8000/v1", "meta-llama/Llama-3.3-70B-Instruct", local=True),
    Provider("lmstudio", "http://localhost:1234/v1", "qwen2.5-7b-instruct", local=True),
    Provider(
        "google-gemini",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "gemini-2.5-flash",
        aliases=("gemini",),
        strict_fields=True,
    ),
    Provider("xai-grok", "https://api.x.ai/v1", "grok-4-fast-reasoning", aliases=("xai", "grok")),
    Provider(
        "alibaba-qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen-plus", aliases=("qwen",)
    ),
    Provider("minimax", "https://api.minimax.io/v1", "MiniMax-M2"),
    Provider("glm", "https://api.z.ai/api/paas/v4", "glm-4.5"),
    Provider(
        "github-models",
        "https://models.github.ai",
        "openai/gpt-4.1",
        chat_path="/inference/chat/completions",
        embeddings_path="/inference/embeddings",
        models_path="/catalog/models",
        headers=_GITHUB_HEADERS,
    ),
    Provider("github-copilot", "https://api.githubcopilot.com", "gpt-4.1"),
    Provider("copilot-proxy", "http://127.0.0.1:4141/v1", "claude-sonnet-4", local=True),
    Provider("xiaomi", "https://api.xiaomimimo.com/v1", "mimo-v2-flash", aliases=("mimo",)),
    Provider(
        "amazon-bedrock",
        "https://bedrock-mantle.us-east-1.api.aws/v1",
        "us.amazon.nova-lite-v1:0",
        aliases=("bedrock",),
    ),
    Provider("nvidia", "https://integrate.api.nvidia.com/v1", "nvidia/llama-3.3-nemotron-super-49b-v1"),
    Provider(
        "huggingface",
        "https://router.huggingface.co/v1",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        aliases=("hugging-face",),
    ),
    Provider("openai-compatible", "http://localhost:8000/v1", "default-model"),
)

_BY_NAME: dict[str, Provider] = {}
for _p in PROVIDERS:
    _BY_NAME[_p.name] = _p
    for _alias in _p.aliases:
        _BY_NAME[_alias] = _p


class UnknownProvider(ValueError):
    """A provider name that is neither canonical nor an alias."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown provider {name!r}; known providers: {known_names_text()}")
        self.name = name


def known_names_text() -> str:
    """'openai, openrouter, ..., google-gemini (gemini), ...' for error messages and help."""
    parts = []
    for p in PROVIDERS:
        parts.append(f"{p.name} ({', '.join(p.aliases)})" if p.aliases else p.name)
    return ", ".join(parts)


def get_provider(name: str) -> Provider:
    """Look a provider up by canonical name or alias (case-insensitive)."""
    provider = _BY_NAME.get((name or "").strip().lower())
    if provider is None:
        raise UnknownProvider(name)
    return provider


def canonical_name(name: str) -> str:
    return get_provider(name).name


_REASONING_MODEL = re.compile(r"(^|/)(o\d|gpt-5)", re.IGNORECASE)


def is_reasoning_model(model: str) -> bool:
    """OpenAI's o-series and gpt-5 family refuse `max_tokens` (PROVIDERS.md)."""
    return bool(_REASONING_MODEL.search(model or ""))


def limit_field_for(provider: Provider, model: str) -> str:
    """The request field that carries an output limit for this provider and model."""
    if provider.limit_field == "max_completion_tokens":
        return "max_completion_tokens"
    if provider.name in ("github-copilot", "github-models", "openrouter", "openai-compatible", "azure"):
        if is_reasoning_model(model):
            return "max_completion_tokens"
    return "max_tokens"


def env_value(provider: Provider, key: str, env: Mapping[str, str]) -> str:
    """HERMIT_<PROVIDER>_<KEY> ('' when unset); key is BASE_URL, API_KEY or MODEL."""
    return (env.get(f"{provider.env_prefix}_{key}") or "").strip()


def effective_base_url(provider: Provider, base_url: str | None, env: Mapping[str, str]) -> str:
    return (base_url or "").strip() or env_value(provider, "BASE_URL", env) or provider.base_url


def effective_model(provider: Provider, model: str | None, env: Mapping[str, str]) -> str:
    return (model or "").strip() or env_value(provider, "MODEL", env) or provider.default_model


def effective_api_key(provider: Provider, api_key: str | None, env: Mapping[str, str]) -> str:
    return (api_key or "").strip() or env_value(provider, "API_KEY", env)


# Fields of the OpenAI chat request that strict upstreams (Gemini) accept.
OPENAI_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
        "max_tokens", "max_completion_tokens", "n", "presence_penalty", "response_format", "seed",
        "stop", "stream", "stream_options", "temperature", "top_p", "tools", "tool_choice",
        "parallel_tool_calls", "user", "reasoning_effort", "modalities", "audio", "prediction",
        "service_tier", "store", "metadata",
    }
)

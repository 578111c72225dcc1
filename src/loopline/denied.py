"""What to tell a model that failed in the sandbox for want of what the sandbox withholds: a variable of the
environment (an LLM's API key) or a TCP connection (to that API)."""

from __future__ import annotations

import re

__all__ = ["denied_advice"]

# A variable read as os.environ["NAME"] fails as KeyError: 'NAME' (MLflow's models-from-code: "Error: 'NAME'")
_WANTS_VARIABLE = re.compile(r"(?i:environment variable|api[_ ]?key)|Error: '[A-Z][A-Z0-9]*_[A-Z0-9_]*'")
_WANTS_NETWORK = re.compile(
    r"connect|Errno 13|Errno 111|Permission denied|name resolution|Name or service not known", re.I
)


def denied_advice(reason: str) -> str:
    """What to do where ``reason`` (a model's failure to load or answer its input example in the sandbox)
    says it wanted a variable of the environment or a connection; empty for any other reason."""
    if not (_WANTS_VARIABLE.search(reason) or _WANTS_NETWORK.search(reason)):
        return ""
    return (
        "model code runs in a sandbox with a clean environment and no TCP connection (docs/security.md); "
        "a model that calls a service as it loads or answers, as an agent calls its LLM's API, gets the "
        "variables sandbox.environment names and may connect to the ports sandbox.connect_ports names in "
        'loopline.yaml (sandbox: {environment: ["OPENAI_API_KEY"], connect_ports: [443]})'
    )

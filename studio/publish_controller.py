"""Publishing a workspace adapter to the Hugging Face Hub (the Adapters tab's Publish button).

In-process through the Hub client (`trainer.publish` is torch-free). The token is the Hub client's own (HF_TOKEN
or the login cache): the studio never asks for it, shows it or stores it.
"""

from __future__ import annotations

from studio.adapter_registry import AdapterError, AdapterRegistry


def publish_adapter(registry: AdapterRegistry, name: str | None, repo: str | None, private: bool, api=None) -> str:
    """Upload the named adapter to `repo`; returns the repository URL. AdapterError says why it cannot."""
    registry.ws.require_writable("publishing to the Hub")  # it uploads with the server's own Hub token
    registry.ws.access.check_publish()
    from trainer.publish import PublishError, plan, publish

    if not name:
        raise AdapterError("Choose an adapter to publish first.")
    if not (repo or "").strip():
        raise AdapterError("Write the Hub repository to publish to, as owner/name.")
    info = registry.get(name)
    try:
        return publish(plan(info.path, repo or "", private), api=api)
    except PublishError as exc:
        raise AdapterError(str(exc)) from None

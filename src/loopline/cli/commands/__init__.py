"""Every command module registers itself on the app when imported."""

from loopline.cli.commands import demo, inner_loop, project

__all__ = ["demo", "inner_loop", "project"]

"""``python -m loopline``: the command line."""

from loopline.cli import run

run()

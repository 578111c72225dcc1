"""The web dashboard (``loopline ui``, and ``/ui`` on the control plane)."""

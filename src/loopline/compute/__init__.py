"""Where training and batch scoring run: this machine, or a Ray cluster named in ``compute.targets``.

``targets`` resolves a name; ``ray_jobs`` runs training as a Ray job; ``ray_batch`` scores a batch job's
chunks (``chunks``) with an actor pool. Ray is imported only when a Ray target is used.
"""

"""The control plane: the SDK over HTTP (``loopline server``) and the client the SDK uses for it."""

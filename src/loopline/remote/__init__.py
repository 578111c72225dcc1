"""The SDK over HTTP: the client side of the control plane, and the wire format both sides share."""

"""Online endpoints: their keys, deployments and traffic, as loopline's database holds them."""

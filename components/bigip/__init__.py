"""BIG-IP side of a unit: device, egress gateway, ingress via CIS, BGP."""

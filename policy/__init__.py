"""cpaas policy pack: `pulumi preview --policy-pack policy` (real engine), or offline over a
render's resources.json (`python -m tools.render --policy`). The rules are in rules.py."""

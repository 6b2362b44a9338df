"""What the bot does for one member across every store: premium status, erasure."""

"""Business rules, one module per flow. Services take plain values and never see HTTP types."""

"""Operator adapters: deliver order batches and translate every outcome into a port result."""

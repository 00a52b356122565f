"""Durable snapshots of session state, stored beside each channel's broker stream."""

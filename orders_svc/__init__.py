"""The orders service: customers' orders. Keeps a customer replica from user events."""

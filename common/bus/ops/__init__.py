"""The operator's side of the bus: what the tools, the admin and the relay's housekeeping use."""

"""The broker side: connections, the confirming publisher, the wire format and the topology."""

"""The notifications service: tells people what happened. Keeps a contact replica from user events."""

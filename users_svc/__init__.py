"""The users service: sign-up, tokens, and the users' own data. Publishes user events."""

"""Effects: one module per external system; adapters make no decisions."""

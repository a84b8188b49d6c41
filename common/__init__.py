"""a2q.common: what every part of a2q shares: the error the CLI reports, the names it
accepts, and files written whole or under a lock."""

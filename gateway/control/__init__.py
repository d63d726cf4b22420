"""Control plane access: the JSON control socket (server, client) and the CLI."""

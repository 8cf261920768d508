"""HTTP/1.x on its own: what a response head says, read from its bytes."""

"""HTTP/1.x on its own: what a response head says, read from its bytes (heads.py); what a URL
must be to be sent, and its credentials (urls.py)."""

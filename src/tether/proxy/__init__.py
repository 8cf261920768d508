"""``tether capture``: a reverse proxy that writes checked records from live traffic (and
mirrors it to a candidate)."""

"""tether: replay HTTP request records, check every response, account for every connection."""

"""The application above the engine: the feed of records, the closed and open models, their
pacers, the session that wires a run together, and runs over processes, a cluster, or several
services at once."""

"""``tether doctor URL``: how a server treats keep-alive connections, measured and explained.

:mod:`.measure` asks the server (through tether's own client); :mod:`.explain` turns the
findings into advice for client settings.
"""

# How far the doctor goes, at most: the defaults of both the command's flags and examine().
MAX_REQUESTS = 1000  # requests on one connection, to find the server's limit
MAX_IDLE_WAIT = 100.0  # seconds to wait for the server to close an idle connection

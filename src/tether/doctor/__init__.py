"""``tether doctor URL``: how a server treats keep-alive connections, measured and explained.

:mod:`.measure` asks the server (through tether's own client); :mod:`.explain` turns the
findings into advice for client settings.
"""

"""Protocol drivers: one package per protocol, found by URL scheme through entry points.

``base`` holds the driver interface, ``registry`` the entry-point lookup, ``worker`` the
worker thread shared by drivers whose client libraries block, and ``options`` the URL
option converter every protocol's options use.
"""

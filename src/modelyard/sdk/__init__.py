"""The Python SDK: one client, two transports (remote HTTP or the app in-process)."""

"""The HTTP and WebSocket interface: app factory, routes, errors."""

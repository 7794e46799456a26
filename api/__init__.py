"""The HTTP API and web page (aiohttp), in the proxy's process and event loop."""

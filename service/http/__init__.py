"""The HTTP layer: aiohttp app factory, resources, problem+json and API docs."""

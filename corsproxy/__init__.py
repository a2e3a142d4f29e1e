"""corsproxy: a local-development reverse proxy that fixes and explains CORS."""

__version__ = "0.1.0"

"""The replay tests reuse the service tests' world: broker topics, a simulator, bridges to start."""

from tests.service.conftest import service

__all__ = ["service"]

"""The test harness: plain modules that tests and benchmarks import (docs/development.md)."""

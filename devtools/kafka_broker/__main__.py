"""Lets ``python -m devtools.kafka_broker`` run the CLI (see :mod:`devtools.kafka_broker.cli`)."""

import sys

from devtools.kafka_broker.cli import main

sys.exit(main())

"""``vibes-bridge explain``'s pure half: which records tell one event's story, and the story.

No I/O here: ``bridge.commands.explain_cmd`` reads the topics through
``bridge.kafka.reader`` and hands each record to :class:`Collector`.
"""

from bridge.explain.story import Collector, ExplainError, Query, build_story, render_text

__all__ = ["Collector", "ExplainError", "Query", "build_story", "render_text"]

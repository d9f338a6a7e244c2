"""Adapters to other frameworks. Each lives in its own module and imports its framework there.

`longrag.integrations.langchain` needs the extra: ``pip install 'longrag[langchain]'``.
Nothing else in longrag imports a framework, so the core package works without them.
"""

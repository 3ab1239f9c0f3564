"""Lava Processes and fixed_pt ProcessModels of the EP network (import-safe).

Lava's compiler executes every ``.py`` file of this folder while it looks for
ProcessModels (lava.md pitfall P1), so every module here only defines classes:
no work at import, no relative imports, no scripts.
"""

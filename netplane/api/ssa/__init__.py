"""Server-side apply: field ownership (managedFields), merging and conflicts.

Pure functions over plain objects (`fieldpath`, `schema`, `walk`, `merge`, `managed`,
`ops`) and their wiring into the API's write paths (`api`).
"""

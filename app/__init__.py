"""The composition root: configuration, wiring, the Engine, metrics, speech glue and the CLI.

The only package that imports every other one; nothing imports it."""

"""NAMD templates, their variables, sandboxed rendering and batch-script generation."""

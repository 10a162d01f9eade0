"""Domain rules as plain functions: they add and flush, never commit, and record their audit events."""

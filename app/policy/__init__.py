"""The school's policy (publish, read and accept, reminders), the coverage view and where to report a concern."""

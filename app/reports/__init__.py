"""Reports for governors and the head: permissions, loans and losses, policy acceptance (counts only)."""

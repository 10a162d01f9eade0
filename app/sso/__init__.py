"""Sign in with Microsoft (Entra ID) or Google (Workspace) through OpenID Connect (issue 14, item 1)."""

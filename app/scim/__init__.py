"""SCIM 2.0 provisioning at /scim/v2 (RFC 7643/7644): Users and Groups (one per role), for Entra ID and friends."""

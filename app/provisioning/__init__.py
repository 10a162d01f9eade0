"""Admin pages for staff provisioning: the staff CSV import and the SCIM provisioning tokens."""

"""School equipment pages (journey J4): assets, labels, loans, stock-takes and "My loans".

Importing the package registers the feature's CLI commands, demo seeder and "My data" section.
"""

from app.equipment import cli, demo, personal_data  # noqa: F401

"""School equipment pages (journey J4): assets, labels, loans, stock-takes and "My loans".

Importing the package registers the feature's CLI commands, demo seeder, "My data" section, and its
links with classroom permission, the kit and booking routes (kit_routes.py), (school assets on the request form, requests in an asset's history).
"""

from app.equipment import demo, kit_routes, permissions_hook, personal_data  # noqa: F401

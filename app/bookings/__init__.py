"""Equipment bookings (issue 17): book an asset or a kit by lesson period or time, see and cancel bookings;
the office sets who may book what and manages kits.

Importing the package registers its demo seeder and its "My data" section.
"""

from app.bookings import demo, personal_data  # noqa: F401

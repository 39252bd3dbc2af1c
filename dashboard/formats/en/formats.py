"""Date and time output formats (Django's format module for English): the admin's lists and
pages show times as the dashboard's server-rendered text does, "2026-12-04 19:15 UTC", with the
zone, instead of Django's "Dec. 4, 2026, 7:15 p.m." without one. Input formats stay Django's."""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i T"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"

"""`make bench`: seeds its own data, measures the overview, checks, rotation, audit verification
and the HTTP server against floors, prints a table and writes bench/results.json."""

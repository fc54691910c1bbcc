"""segserve app package."""

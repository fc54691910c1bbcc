"""segserve client package."""

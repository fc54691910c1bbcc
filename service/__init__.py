"""segserve service package."""

"""Tests of the dataset browser: its pages, thumbnails, and the pages driven in Chromium."""

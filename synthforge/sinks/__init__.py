"""Where outputs go: every file is written under a temporary name and renamed into place."""

"""Third-party source kept inside synthforge, each in its own folder with its licence (see the folder's __init__)."""

"""The engine: recipe in, finished output folder out."""

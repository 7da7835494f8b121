"""The emotion model: its file format, its numpy forward pass, and speaker normalisation."""

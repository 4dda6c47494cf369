"""Screenshots of the web app for the README: `python -m scripts.screenshots` (see __main__)."""

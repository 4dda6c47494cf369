"""The web app at /app/: static HTML, CSS and JavaScript modules that use the public API only."""

"""The app's UI pieces: shared widget helpers (widgets) and one module of tab builders per concern (tabs_*)."""

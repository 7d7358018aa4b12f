"""Data sources and the model-ready Dataset."""

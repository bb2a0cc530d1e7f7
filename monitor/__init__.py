"""monitor: a self-hosted news alert service for geopolitical crises."""

__version__ = "0.1.0"

"""Data-plane services in their own processes, on the service transport (``io/service.py``)."""

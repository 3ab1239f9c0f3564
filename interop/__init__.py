"""Interoperability with other tools of the ecosystem (NIR, snnTorch); plug-ins, not the core."""

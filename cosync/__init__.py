"""Cosync JWT server: a self-hosted authentication service on Azure Functions."""

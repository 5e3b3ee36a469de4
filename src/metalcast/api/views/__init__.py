"""Rendering of database records as Ironic's JSON resources."""

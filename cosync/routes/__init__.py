"""HTTP-triggered functions, one blueprint per route group; each route is a few lines."""

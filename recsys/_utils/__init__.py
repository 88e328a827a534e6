"""Private helpers shared across recsys modules."""

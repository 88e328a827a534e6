"""Datasets: MovieLens releases (download, parse) and synthetic data."""

from recsys.datasets.movielens import RELEASES, MovieLens, load_movielens
from recsys.datasets.synthetic import synthetic

__all__ = ["RELEASES", "MovieLens", "load_movielens", "synthetic"]

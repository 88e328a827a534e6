"""Moved to :mod:`recsys._peers` (the CLI and the benchmarks share it); this path re-exports it."""

from recsys._peers import (
    PEERS,
    CornacBPR,
    CornacEASE,
    ImplicitALS,
    ImplicitBM25,
    ImplicitBPR,
    ImplicitCosine,
    PeerModel,
    PeerSpec,
    PeerUnavailable,
    SurpriseSVD,
    build_peer,
)

__all__ = [
    "PEERS",
    "CornacBPR",
    "CornacEASE",
    "ImplicitALS",
    "ImplicitBM25",
    "ImplicitBPR",
    "ImplicitCosine",
    "PeerModel",
    "PeerSpec",
    "PeerUnavailable",
    "SurpriseSVD",
    "build_peer",
]

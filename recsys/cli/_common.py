"""The helpers the subcommands share, re-exported from the modules that own them.

* :mod:`recsys.cli._errors`: ``CLIError``, ``UsageError``;
* :mod:`recsys.cli._parse`: command-line values (``parse_value``, ``parse_params``, ``parse_list``, ``parse_ks``, ``parse_size``);
* :mod:`recsys.cli._data`: data options and loading, splits;
* :mod:`recsys.cli._models`: models by CLI name, built and timed;
* :mod:`recsys.cli._output`: stderr, tables, JSON result files, versions.
"""

from __future__ import annotations

from recsys._utils.jsonable import to_jsonable as clean_json
from recsys._utils.measure import PeakMemory, machine, machine_line
from recsys.cli._data import (
    DATASETS,
    SPLITS,
    DataOptions,
    LoadedData,
    SplitOptions,
    _read_table,
    add_data_args,
    data_options,
    frame_sha256,
    load_data,
    make_split,
    split_options,
    validation_split,
)
from recsys.cli._errors import CLIError, UsageError
from recsys.cli._models import TimedModel, add_model_args, build_model
from recsys.cli._output import check_json_target, console, eprint, versions, write_json
from recsys.cli._parse import parse_ks, parse_list, parse_params, parse_size, parse_value

__all__ = [
    "DATASETS", "SPLITS", "CLIError", "DataOptions", "LoadedData", "PeakMemory", "SplitOptions", "TimedModel",
    "UsageError", "_read_table", "add_data_args", "add_model_args", "build_model", "check_json_target", "clean_json",
    "console", "data_options", "eprint", "frame_sha256", "load_data", "machine", "machine_line", "make_split",
    "parse_ks", "parse_list", "parse_params", "parse_size", "parse_value", "split_options", "validation_split",
    "versions", "write_json",
]  # fmt: skip

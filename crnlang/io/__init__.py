"""Files in and out: SBML import/export, .crn writing, result files and plots.

    import_sbml(path, lenient=False) -> (crn_text, warnings)
    export_sbml(model) -> SBML Level 3 Version 2 text
    write_crn(model) -> .crn text
    save_result(result, directory) -> [paths];  load_result(directory) -> Result

The heavy modules (libsbml, matplotlib) load on first use.
"""
from __future__ import annotations

__all__ = ["import_sbml", "export_sbml", "write_crn", "save_result", "load_result"]


def import_sbml(path, lenient: bool = False, **options):
    from .sbml import import_sbml as _import

    return _import(path, lenient=lenient, **options)


def export_sbml(model) -> str:
    from .sbml import export_sbml as _export

    return _export(model)


def write_crn(model, comments=()) -> str:
    from .crn_writer import write_crn as _write

    return _write(model, comments)


def save_result(result, directory, plots: bool = True):
    from .results import save_result as _save

    return _save(result, directory, plots=plots)


def load_result(directory):
    from ..result import Result
    from .results import read_result_fields

    return Result(**read_result_fields(directory))

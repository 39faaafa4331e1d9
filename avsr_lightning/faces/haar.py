"""OpenCV's bundled Haar cascade (``cv2.data``) as a detection-only fallback :class:`LandmarkDetector`.

It gives a face box, no landmarks: the 68 points are the mean face scaled into the box (fixed geometry:
eye line at 40 %, mouth centre at ~78 % of the box height), so the crop follows the face's position and
size but not its rotation or the mouth's own motion. Use ``mediapipe`` for real lip tracking.
"""
from __future__ import annotations

import numpy as np

from avsr_lightning.faces.detector import Face


class HaarFaceDetector:
    name = "haar"

    def __init__(self, max_faces: int = 2, template: np.ndarray | None = None, min_size: int = 40) -> None:
        import cv2

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ImportError(f"OpenCV's face cascade {path} could not be loaded")
        self.max_faces, self.min_size = max_faces, min_size
        self._template = template

    def reset(self) -> None:
        pass

    def set_template(self, mean_face: np.ndarray) -> None:
        """Normalise the mean face to the unit box the cascade's detections are mapped from."""
        pts = np.asarray(mean_face, dtype=np.float32)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        self._template = (pts - lo) / (hi - lo)

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        import cv2

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        boxes = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(self.min_size, self.min_size))
        if self._template is None:
            raise ValueError("HaarFaceDetector needs a mean-face template: call set_template(mean_face)")
        faces = []
        for x, y, bw, bh in sorted(boxes, key=lambda b: -b[2] * b[3])[: self.max_faces]:
            # the cascade's box spans brows to chin and ~cheek to cheek; the 68 points span jaw to jaw
            x0, y0, sw, sh = x + 0.02 * bw, y + 0.18 * bh, 0.96 * bw, 0.85 * bh
            pts = self._template * np.array([sw, sh], np.float32) + np.array([x0, y0], np.float32)
            faces.append(Face(pts.astype(np.float32), 0.5, None))
        return faces

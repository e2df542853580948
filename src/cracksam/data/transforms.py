"""Albumentations pipelines that turn an original-size image/mask pair into a square model input.

Choices (and why):

* **Resize to S x S** without keeping the aspect ratio: the model sees a fixed square input and the
  crack datasets are mildly non-square (3:2 at most), so the distortion is small and no padded
  border is wasted. Predictions are resized back to the original size for evaluation.
* **Image interpolation**: ``INTER_AREA`` when the image is shrunk in either direction (it averages
  pixels, so thin cracks fade instead of aliasing into broken dashes), ``INTER_LINEAR`` when it is
  only enlarged (``INTER_AREA`` gives blocky results there). Albumentations' ``area_for_downscale``
  makes this choice per image.
* **Mask interpolation** is always nearest, so the mask stays exactly {0, 1}.
* **Augmentations** (training only) are applied after the resize, on the small image (cheaper):
  flips and 90-degree rotations (cracks have no preferred direction) and a small free rotation.
  The free rotation reflects the border for the image AND the mask: the reflected image shows the
  reflected crack, so the mask must show it too, otherwise the border would teach the model that
  visible cracks are background.
"""

from __future__ import annotations

import albumentations as A
import cv2

from cracksam.errors import InvalidValueError

__all__ = ["ROTATE_LIMIT_DEG", "build_transform"]

ROTATE_LIMIT_DEG = 20.0


def build_transform(image_size: int, augment: bool, *, image_interpolation: int | None = None,
                    crop: int | None = None, additional_targets: dict[str, str] | None = None,
                    seed: int | None = None) -> A.Compose:
    """Build the pipeline ``image (H x W x 3 uint8), mask (H x W uint8)`` -> ``S x S x 3``, ``S x S``.

    Args:
        image_size: side ``S`` of the square output.
        augment: add random flips, 90-degree rotations and a small rotation (training).
        image_interpolation: OpenCV flag for the image (resize and rotation); ``None`` (default)
            chooses area/linear as described in the module docstring. Tests pass
            ``cv2.INTER_NEAREST`` to compare image and mask pixel for pixel.
        crop: finally cut a random ``crop x crop`` window (training at inference scale, cheaper).
        additional_targets: more arrays transformed like the mask (e.g. cached teacher logits
            already at S x S, so the resize leaves them unchanged).
        seed: seed of the random augmentation (``None``: from the OS). Albumentations 2 ignores
            the global ``random`` / numpy seeds, so this (or ``set_random_seed``) is the only way
            to reproduce a run.

    Returns:
        An ``A.Compose`` called as ``t(image=img, mask=mask)``; both outputs keep their dtypes.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise InvalidValueError(f"image_size must be a positive integer, got {image_size!r}")
    interp = cv2.INTER_LINEAR if image_interpolation is None else image_interpolation
    steps: list[A.BasicTransform] = [
        A.Resize(
            height=image_size,
            width=image_size,
            interpolation=interp,
            mask_interpolation=cv2.INTER_NEAREST,
            area_for_downscale="image" if image_interpolation is None else None,
        )
    ]
    if augment:
        steps += [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Rotate(
                limit=ROTATE_LIMIT_DEG,
                interpolation=interp,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_REFLECT_101,
                p=0.3,
            ),
        ]
    if crop is not None and crop < image_size:
        steps.append(A.RandomCrop(height=crop, width=crop))
    # Extra targets (teacher logits) arrive already at S x S while the image is at its original
    # size; the first step resizes everything to S x S, after which all shapes agree again.
    return A.Compose(steps, additional_targets=additional_targets, is_check_shapes=not additional_targets, seed=seed)

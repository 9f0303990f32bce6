"""The app's service layer: ``FaceLab`` (service.py) over one module per concern.

bundles (catalogue and loading), inputs (bounds every endpoint checks), latents (codes per model
kind), traverse, morph, style, conditional, background, results, studies (RESULTS.md in the app),
photos (uploads), render / present / plots (what the tabs show). The app (app.py) imports this
package only; nothing in the library below it imports it back.
"""

from facelab.lab.bundles import LabError
from facelab.lab.service import START_SOURCES, FaceLab, FaceSpec

__all__ = ["FaceLab", "FaceSpec", "LabError", "START_SOURCES"]

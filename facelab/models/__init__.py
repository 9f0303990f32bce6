"""facelab models behind one LatentModel interface."""

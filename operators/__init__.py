from . import models, prefs_ops, reconstruct

classes = (*reconstruct.classes, *prefs_ops.classes, *models.classes)

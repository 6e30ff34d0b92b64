from . import prefs_ops, reconstruct

classes = (*reconstruct.classes, *prefs_ops.classes)

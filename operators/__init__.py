from . import ml_env, models, prefs_ops, reconstruct, templates

classes = (*reconstruct.classes, *prefs_ops.classes, *models.classes, *templates.classes, *ml_env.classes)

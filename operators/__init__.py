from . import (
    ml_env,
    models,
    prefs_ops,
    reconstruct,
    segment_add,
    segment_fix,
    segment_merge,
    segment_paint,
    segment_pick,
    segment_remove,
    segment_save,
    segment_split,
    templates,
)

classes = (
    *reconstruct.classes, *prefs_ops.classes, *models.classes, *templates.classes, *ml_env.classes,
    *segment_fix.classes, *segment_add.classes, *segment_remove.classes, *segment_merge.classes,
    *segment_split.classes, *segment_paint.classes, *segment_pick.classes, *segment_save.classes,
)

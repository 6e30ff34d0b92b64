"""The headless batch behind ``blender -b -c monocle``: inputs and output names (:mod:`.inputs`),
safe writes into shared folders (:mod:`.files`), and the run itself (:mod:`.run`)."""

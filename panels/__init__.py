from . import main

classes = main.classes

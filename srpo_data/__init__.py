"""SRPO data: RL preprocessors, the stage-1 reflection builder and the tiny offline test model."""
